//! `talosctl time [--check SERVER]`: the node's clock against an NTP server, as timed measures
//! it.

use clap::Args;
use proto::time::TimeRequest;
use time::OffsetDateTime;
use time::macros::format_description;

use crate::cli::GlobalArgs;
use crate::connection::{Session, block_on};
use crate::failures::Failures;
use crate::output::table;

#[derive(Debug, Args)]
pub struct TimeArgs {
    /// Checks server time against specified ntp server
    #[arg(short = 'c', long)]
    pub check: Option<String>,
}

pub fn run(args: TimeArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    block_on(async {
        let session = Session::open(global).await?;
        let mut failures = Failures::default();
        let mut rows = Vec::new();
        for target in session.targets() {
            let mut client = target.time();
            let reply = match &args.check {
                Some(server) => {
                    let request = TimeRequest {
                        server: server.clone(),
                    };
                    client.time_check(target.request(request)?).await
                }
                None => client.time(target.request(())?).await,
            };
            for (node, time) in target.unary(reply.map(|r| r.into_inner().messages), &mut failures)
            {
                rows.push(vec![
                    node,
                    time.server,
                    go_time(time.localtime.as_ref()),
                    go_time(time.remotetime.as_ref()),
                ]);
            }
        }
        print!(
            "{}",
            table(
                &["NODE", "NTP-SERVER", "NODE-TIME", "NTP-SERVER-TIME"],
                &rows
            )
        );
        failures.finish()
    })
}

/// A timestamp the way Go prints a UTC `time.Time`: `2006-01-02 15:04:05.999999999 +0000 UTC`.
fn go_time(timestamp: Option<&prost_types::Timestamp>) -> String {
    let Some(timestamp) = timestamp else {
        return String::new();
    };
    let nanos = i128::from(timestamp.seconds) * 1_000_000_000 + i128::from(timestamp.nanos);
    let Ok(at) = OffsetDateTime::from_unix_timestamp_nanos(nanos) else {
        return String::new();
    };
    let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let fraction = format!("{:09}", at.nanosecond());
    let fraction = fraction.trim_end_matches('0');
    let fraction = if fraction.is_empty() {
        String::new()
    } else {
        format!(".{fraction}")
    };
    format!(
        "{}{fraction} +0000 UTC",
        at.format(&format).unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_like_go() {
        let at = |seconds, nanos| prost_types::Timestamp { seconds, nanos };
        assert_eq!(
            go_time(Some(&at(1_700_000_000, 120_000_000))),
            "2023-11-14 22:13:20.12 +0000 UTC"
        );
        assert_eq!(go_time(Some(&at(0, 0))), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(go_time(None), "");
    }
}
