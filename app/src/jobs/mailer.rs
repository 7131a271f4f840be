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

    /// Whether the SMTP server answers (connects and greets) within `timeout`, for `/health`;
    /// `None` for the outbox, which has no server.
    pub async fn reachable(&self, timeout: std::time::Duration) -> Option<bool> {
        let Self::Smtp { transport, .. } = self else {
            return None;
        };
        Some(matches!(
            tokio::time::timeout(timeout, transport.test_connection()).await,
            Ok(Ok(true))
        ))
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

    /// A plain-text SMTP server on loopback that greets and says yes to everything.
    async fn greeting_server() -> std::net::SocketAddr {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (read, mut write) = socket.into_split();
                let _ = write.write_all(b"220 test ESMTP\r\n").await;
                let mut lines = BufReader::new(read).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let quit = line.eq_ignore_ascii_case("QUIT");
                    let answer: &[u8] = if quit { b"221 bye\r\n" } else { b"250 ok\r\n" };
                    let _ = write.write_all(answer).await;
                    if quit {
                        break;
                    }
                }
            }
        });
        addr
    }

    #[tokio::test]
    async fn reachable_says_whether_the_smtp_server_greets() {
        let timeout = std::time::Duration::from_secs(2);
        assert_eq!(Mailer::Outbox.reachable(timeout).await, None);
        let up = greeting_server().await;
        let mailer = Mailer::from_config(&config(&["--smtp-url", &format!("smtp://{up}")])).unwrap();
        assert_eq!(mailer.reachable(timeout).await, Some(true));
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let mailer = Mailer::from_config(&config(&["--smtp-url", &format!("smtp://{closed}")])).unwrap();
        assert_eq!(mailer.reachable(timeout).await, Some(false));
    }
}
