//! `Default` for a flag group is what its flags say when none is given, so a default is written
//! once, in the `#[arg]` attribute, and never again in code.
use clap::{Args, Command, FromArgMatches};

/// The group `T` as parsed from no arguments and no environment (a test's defaults must not depend
/// on the shell it runs in).
///
/// # Panics
/// When `T` has a required flag: such a group has no defaults, and asking for them is a
/// programming error (every group that implements `Default` is parsed once by a unit test).
pub fn from_flags<T: Args + FromArgMatches>() -> T {
    let command = T::augment_args(Command::new("defaults")).mut_args(|arg| arg.env(None::<&'static str>));
    let parsed = command
        .try_get_matches_from(["defaults"])
        .and_then(|matches| T::from_arg_matches(&matches));
    match parsed {
        Ok(group) => group,
        Err(err) => panic!("a flag group without defaults was asked for its defaults: {err}"),
    }
}

/// `impl Default` through [`from_flags`] for each group named.
macro_rules! default_from_flags {
    ($($group:ty),+ $(,)?) => {
        $(impl Default for $group {
            /// What the flags say when none is given.
            fn default() -> Self {
                $crate::config::defaults::from_flags()
            }
        })+
    };
}
pub(super) use default_from_flags;
