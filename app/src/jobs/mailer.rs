//! How emails leave the process: SMTP when it is configured, else only the `outbox` table.
use lettre::{AsyncSmtpTransport, Tokio1Executor, message::Mailbox};
use secrecy::ExposeSecret;

use super::error::JobsError;
use crate::config::JobsConfig;

/// How emails leave the process.
#[derive(Clone)]
pub enum Mailer {
    /// No SMTP configured: emails go to the `outbox` table only.
    Outbox,
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
    },
}

impl Mailer {
    /// SMTP when `SMTP_URL` is set, else the outbox.
    pub fn from_config(cfg: &JobsConfig) -> Result<Self, JobsError> {
        let Some(url) = &cfg.smtp_url else {
            return Ok(Self::Outbox);
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
            .map_err(JobsError::Smtp)?
            .build();
        let from = cfg.mail_from.parse().map_err(|_| JobsError::MailFrom)?;
        Ok(Self::Smtp { transport, from })
    }

    /// How the email left, as the outbox records it.
    pub fn transport_name(&self) -> &'static str {
        match self {
            Self::Outbox => "outbox",
            Self::Smtp { .. } => "smtp",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> JobsConfig {
        #[derive(clap::Parser)]
        struct Flags {
            #[command(flatten)]
            jobs: JobsConfig,
        }
        let mut all = vec!["test"];
        all.extend_from_slice(args);
        <Flags as clap::Parser>::parse_from(all).jobs
    }

    // The SMTP pool spawns its reaper on the runtime, hence tokio::test.
    #[tokio::test]
    async fn smtp_is_used_only_when_configured_and_its_secret_stays_hidden() {
        assert!(matches!(Mailer::from_config(&config(&[])), Ok(Mailer::Outbox)));
        let smtp = config(&["--smtp-url", "smtps://mailer:hunter2@mail.example.com:465"]);
        assert!(matches!(Mailer::from_config(&smtp), Ok(Mailer::Smtp { .. })));
        assert!(!format!("{smtp:?}").contains("hunter2"));
        let bad = config(&["--smtp-url", "gopher://mailer:hunter2@mail.example.com"]);
        let err = Mailer::from_config(&bad).err().expect("not an SMTP URL");
        assert!(!format!("{err} {err:?}").contains("hunter2"));
        let bad_from = config(&["--smtp-url", "smtp://mail.example.com", "--mail-from", "nobody"]);
        assert!(matches!(Mailer::from_config(&bad_from), Err(JobsError::MailFrom)));
    }
}
