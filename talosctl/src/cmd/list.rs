//! `talosctl list [PATH]` (alias `ls`): a directory listing of the node.

use clap::Args;
use proto::machine::list_request::Type as FileType;
use proto::machine::{FileInfo, ListRequest};
use time::OffsetDateTime;
use time::macros::format_description;

use crate::cli::GlobalArgs;
use crate::connection::{Session, block_on};
use crate::failures::Failures;
use crate::file_mode::go_mode_string;
use crate::humanize::si_bytes;
use crate::output::table;

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Directory to list
    #[arg(default_value = "/")]
    pub path: String,
    /// Display additional file details
    #[arg(short = 'l', long)]
    pub long: bool,
    /// Recurse into subdirectories
    #[arg(short = 'r', long)]
    pub recurse: bool,
    /// Maximum recursion depth
    #[arg(short = 'd', long, default_value_t = 1)]
    pub depth: i32,
    /// Filter by specified types: f (regular file), d (directory), l/L (symbolic link)
    #[arg(short = 't', long = "type", value_delimiter = ',')]
    pub types: Vec<String>,
    /// Print sizes in human readable format
    #[arg(short = 'H', long)]
    pub humanize: bool,
}

fn list_request(args: &ListArgs) -> anyhow::Result<ListRequest> {
    let types = args
        .types
        .iter()
        .map(|t| {
            let file_type = match t.as_str() {
                "f" | "file" | "regular" => FileType::Regular,
                "d" | "dir" | "directory" => FileType::Directory,
                "l" | "L" | "sym" | "symlink" => FileType::Symlink,
                other => anyhow::bail!("invalid file type {other:?}: use f, d or l"),
            };
            Ok(file_type as i32)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (recurse, recursion_depth) = match (args.recurse, args.depth) {
        (true, 1) => (true, 0),
        (recurse, depth) => (recurse || depth > 1, depth),
    };
    Ok(ListRequest {
        root: args.path.clone(),
        recurse,
        recursion_depth,
        types,
        report_xattrs: false,
    })
}

pub fn run(args: ListArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let request = list_request(&args)?;
    block_on(async {
        let session = Session::open(global).await?;
        let mut failures = Failures::default();
        let mut entries = Vec::new();
        for target in session.targets() {
            let reply = target
                .machine()
                .list(target.request(request.clone())?)
                .await;
            target
                .stream(reply, &mut failures, |node, info| {
                    if info.error.is_empty() {
                        entries.push((node.to_string(), info));
                    } else {
                        eprintln!("{node}: error reading file {}: {}", info.name, info.error);
                    }
                    Ok(())
                })
                .await?;
        }
        print!("{}", listing(&entries, args.long, args.humanize));
        failures.finish()
    })
}

fn listing(entries: &[(String, FileInfo)], long: bool, humanize: bool) -> String {
    if !long {
        let rows: Vec<Vec<String>> = entries
            .iter()
            .map(|(node, info)| vec![node.clone(), info.relative_name.clone()])
            .collect();
        return table(&["NODE", "NAME"], &rows);
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|(node, info)| {
            let mut name = info.relative_name.clone();
            if !info.link.is_empty() {
                name = format!("{name} -> {}", info.link);
            }
            let size = if humanize {
                si_bytes(info.size.max(0) as u64)
            } else {
                info.size.to_string()
            };
            vec![
                node.clone(),
                go_mode_string(info.mode),
                info.uid.to_string(),
                info.gid.to_string(),
                size,
                modified(info.modified),
                name,
            ]
        })
        .collect();
    table(
        &["NODE", "MODE", "UID", "GID", "SIZE(B)", "LASTMOD", "NAME"],
        &rows,
    )
}

/// Modification time as upstream writes it (Go layout `Jan 2 2006 15:04`), in UTC.
fn modified(unix_seconds: i64) -> String {
    let format =
        format_description!("[month repr:short] [day padding:none] [year] [hour]:[minute]");
    OffsetDateTime::from_unix_timestamp(unix_seconds)
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        list: ListArgs,
    }

    fn request(args: &[&str]) -> anyhow::Result<ListRequest> {
        list_request(&Wrapper::parse_from(std::iter::once("ls").chain(args.iter().copied())).list)
    }

    #[test]
    fn depth_and_recursion() {
        let plain = request(&[]).expect("request");
        assert_eq!(
            (plain.root.as_str(), plain.recurse, plain.recursion_depth),
            ("/", false, 1)
        );
        let recursive = request(&["-r", "/var"]).expect("request");
        assert_eq!((recursive.recurse, recursive.recursion_depth), (true, 0));
        let deep = request(&["-d", "3", "/etc"]).expect("request");
        assert_eq!((deep.recurse, deep.recursion_depth), (true, 3));
    }

    #[test]
    fn types_map_to_the_enum() {
        let typed = request(&["-t", "f,d", "-t", "l"]).expect("request");
        assert_eq!(
            typed.types,
            [
                FileType::Regular as i32,
                FileType::Directory as i32,
                FileType::Symlink as i32
            ]
        );
        assert!(request(&["-t", "x"]).is_err());
    }

    #[test]
    fn long_listing_has_go_modes_and_links() {
        let entries = vec![
            (
                "10.5.0.2".to_string(),
                FileInfo {
                    name: "/etc".into(),
                    relative_name: ".".into(),
                    mode: (1 << 31) | 0o755,
                    modified: 1_700_000_000,
                    size: 4096,
                    is_dir: true,
                    ..Default::default()
                },
            ),
            (
                "10.5.0.2".to_string(),
                FileInfo {
                    name: "/etc/mtab".into(),
                    relative_name: "mtab".into(),
                    mode: (1 << 27) | 0o777,
                    modified: 1_700_000_000,
                    size: 19,
                    link: "/proc/mounts".into(),
                    ..Default::default()
                },
            ),
        ];
        assert_eq!(
            listing(&entries, true, false),
            "NODE       MODE         UID   GID   SIZE(B)   LASTMOD             NAME\n\
             10.5.0.2   drwxr-xr-x   0     0     4096      Nov 14 2023 22:13   .\n\
             10.5.0.2   Lrwxrwxrwx   0     0     19        Nov 14 2023 22:13   mtab -> /proc/mounts\n"
        );
        assert!(listing(&entries, true, true).contains("4.1 kB"));
        assert_eq!(
            listing(&entries, false, false),
            "NODE       NAME\n10.5.0.2   .\n10.5.0.2   mtab\n"
        );
    }
}
