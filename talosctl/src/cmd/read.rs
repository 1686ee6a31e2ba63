//! `talosctl read PATH` (alias `cat`): a file of the node, written to stdout as it streams.

use std::io::Write as _;

use clap::Args;
use proto::machine::ReadRequest;

use crate::cli::GlobalArgs;
use crate::connection::{Session, block_on};
use crate::failures::Failures;

#[derive(Debug, Args)]
pub struct ReadArgs {
    /// File to read
    pub path: String,
}

pub fn run(args: ReadArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    block_on(async {
        let session = Session::open(global).await?;
        session.require_one_node("read")?;
        let mut failures = Failures::default();
        let mut out = std::io::stdout().lock();
        for target in session.targets() {
            let request = ReadRequest {
                path: args.path.clone(),
            };
            let reply = target.machine().read(target.request(request)?).await;
            target
                .stream(reply, &mut failures, |_, data| {
                    out.write_all(&data.bytes)?;
                    Ok(())
                })
                .await?;
        }
        out.flush()?;
        failures.finish()
    })
}
