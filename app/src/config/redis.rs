//! The Redis password: given apart from the URL (the bundled Redis' password comes from a Secret,
//! its URL from a ConfigMap), put into the URL here so that every place connects the same way.
use secrecy::{ExposeSecret, SecretString};

/// `url` with `password` in its user info, unless it has user info already or no password is given.
pub fn with_password(url: &str, password: Option<&SecretString>) -> String {
    let Some(password) = password.map(ExposeSecret::expose_secret) else {
        return url.to_owned();
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    if authority.contains('@') || password.is_empty() {
        return url.to_owned();
    }
    format!("{scheme}://:{}@{rest}", escape(password))
}

/// Percent-encodes everything but unreserved characters (RFC 3986), as user info needs.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_goes_into_a_url_without_one() {
        let pw = SecretString::from("s3cr/t");
        assert_eq!(
            with_password("redis://cache:6379/0", Some(&pw)),
            "redis://:s3cr%2Ft@cache:6379/0"
        );
        assert_eq!(
            with_password("redis://:given@cache:6379", Some(&pw)),
            "redis://:given@cache:6379"
        );
        assert_eq!(with_password("redis://cache:6379", None), "redis://cache:6379");
    }
}
