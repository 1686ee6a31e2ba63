//! `talosctl config …`: edit the talosconfig file.

use std::io::BufRead as _;
use std::path::PathBuf;

use anyhow::Context as _;
use atomicfile::Overwrite;
use clap::{Args, Subcommand, ValueEnum};
use talosconfig::{Context, Talosconfig};

use crate::cli::GlobalArgs;
use crate::output::table;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Set the endpoints for the current context
    #[command(visible_alias = "endpoints")]
    Endpoint {
        /// Endpoints (IP or hostname, optionally with a port)
        endpoints: Vec<String>,
    },
    /// Set the nodes for the current context
    #[command(visible_alias = "nodes")]
    Node {
        /// Nodes (IP or hostname, no port)
        nodes: Vec<String>,
    },
    /// Set the proxy URL for the current context
    ///
    /// Supported schemes: socks5, http, https. Use "direct" to explicitly bypass any proxy.
    /// Pass an empty string to clear the proxy URL. Omit the argument to display the current
    /// proxy URL. talos-rs's talosctl stores the URL for other clients but does not dial through
    /// it.
    #[command(name = "proxy-url")]
    ProxyUrl {
        /// The proxy URL
        url: Option<String>,
    },
    /// Set the current context
    #[command(visible_alias = "use-context")]
    Context {
        /// Context name
        name: String,
    },
    /// List defined contexts
    #[command(visible_alias = "get-contexts")]
    Contexts,
    /// Merge additional contexts from another client configuration file
    Merge {
        /// Talosconfig file to merge in
        from: PathBuf,
    },
    /// Add a new context
    Add(AddArgs),
    /// Remove contexts
    Remove(RemoveArgs),
    /// Generate a new client configuration file (a client certificate signed by the node)
    New(NewArgs),
    /// Show information about the current context
    Info {
        /// Output format
        #[arg(short = 'o', long, value_enum, default_value = "text")]
        output: InfoFormat,
    },
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// Context name
    pub name: String,
    /// The path to the CA certificate
    #[arg(long)]
    pub ca: PathBuf,
    /// The path to the certificate
    #[arg(long)]
    pub crt: PathBuf,
    /// The path to the key
    #[arg(long)]
    pub key: PathBuf,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// Context names
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Do not ask for confirmation
    #[arg(short = 'y', long)]
    pub noconfirm: bool,
    /// Show what would be removed without removing it
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// Where to write the new talosconfig
    #[arg(default_value = "talosconfig")]
    pub path: PathBuf,
    /// Roles
    #[arg(long, value_delimiter = ',', default_value = "os:admin")]
    pub roles: Vec<String>,
    /// Certificate TTL
    #[arg(long, default_value = "87600h")]
    pub crt_ttl: String,
    /// Overwrite the file if it exists
    #[arg(long)]
    pub force: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum InfoFormat {
    Text,
    Json,
    Yaml,
}

pub fn run(cmd: ConfigCommand, global: &GlobalArgs) -> anyhow::Result<()> {
    let path = global.talosconfig_path();
    let context_name = global.context.as_deref();
    let mut config = Talosconfig::load_or_empty(&path)?;
    match cmd {
        ConfigCommand::Endpoint { endpoints } => {
            config.context_mut(context_name)?.endpoints = endpoints;
        }
        ConfigCommand::Node { nodes } => {
            config.context_mut(context_name)?.nodes = nodes;
        }
        ConfigCommand::ProxyUrl { url: None } => {
            let (_, context) = config.context(context_name)?;
            println!("{}", context.proxy_url);
            return Ok(());
        }
        ConfigCommand::ProxyUrl { url: Some(url) } => {
            let url = url.trim().to_owned();
            if !url.is_empty() {
                eprintln!(
                    "note: talos-rs's talosctl does not dial through a proxy; the URL is stored \
                     for other clients"
                );
            }
            config.context_mut(context_name)?.proxy_url = url;
        }
        ConfigCommand::Context { name } => config.use_context(&name)?,
        ConfigCommand::Contexts => {
            print!("{}", contexts_table(&config));
            return Ok(());
        }
        ConfigCommand::Merge { from } => {
            let other = Talosconfig::load(&from)?;
            for (old, new) in config.merge(other) {
                println!("renamed talosconfig context {old:?} -> {new:?}");
            }
        }
        ConfigCommand::Add(args) => {
            let read = |p: &PathBuf| {
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
            };
            let context = Context::new(
                vec![],
                &read(&args.ca)?,
                &read(&args.crt)?,
                &read(&args.key)?,
            );
            config.add(&args.name, context)?;
        }
        ConfigCommand::Remove(args) => {
            for name in &args.names {
                config.context(Some(name))?;
                if args.dry_run {
                    println!("would remove context {name:?}");
                    continue;
                }
                if !args.noconfirm && !confirm(&format!("Remove context {name:?}?"))? {
                    anyhow::bail!("removal of context {name:?} was not confirmed");
                }
                config.remove(name)?;
            }
            if args.dry_run {
                return Ok(());
            }
        }
        ConfigCommand::Info { output } => {
            return info::print(&config, context_name, output);
        }
        ConfigCommand::New(args) => return new::run(args, global),
    }
    config.save(&path, Overwrite::Allow)?;
    Ok(())
}

fn contexts_table(config: &Talosconfig) -> String {
    let rows: Vec<Vec<String>> = config
        .contexts
        .iter()
        .map(|(name, ctx)| {
            vec![
                if *name == config.context { "*" } else { "" }.to_string(),
                name.clone(),
                ctx.endpoints.join(","),
                ctx.nodes.join(","),
            ]
        })
        .collect();
    table(&["CURRENT", "NAME", "ENDPOINTS", "NODES"], &rows)
}

fn confirm(question: &str) -> anyhow::Result<bool> {
    eprint!("{question} (y/N): ");
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

mod info {
    use super::*;

    #[derive(Debug, serde::Serialize)]
    struct Info {
        context: String,
        nodes: Vec<String>,
        endpoints: Vec<String>,
        roles: Vec<String>,
        #[serde(rename = "certTTL")]
        cert_ttl: String,
        #[serde(rename = "certNotAfter")]
        cert_not_after: String,
    }

    pub fn print(
        config: &Talosconfig,
        name: Option<&str>,
        format: InfoFormat,
    ) -> anyhow::Result<()> {
        let (name, context) = config.context(name)?;
        let credentials = context.credentials(name)?;
        let cert = pki::CertificateInfo::from_pem(&credentials.crt_pem)
            .with_context(|| format!("context {name:?}: client certificate"))?;
        let now = time::OffsetDateTime::now_utc();
        let info = Info {
            context: name.to_string(),
            nodes: context.nodes.clone(),
            endpoints: context.endpoints.clone(),
            roles: cert.organizations.clone(),
            cert_ttl: human_duration(cert.not_after - now),
            cert_not_after: cert
                .not_after
                .format(&time::format_description::well_known::Rfc3339)?,
        };
        match format {
            InfoFormat::Json => println!("{}", serde_json::to_string_pretty(&info)?),
            InfoFormat::Yaml => print!("{}", serde_norway::to_string(&info)?),
            InfoFormat::Text => {
                let date = cert.not_after.date();
                let expires = if cert.not_after <= now {
                    format!(
                        "EXPIRED {} ago ({date})",
                        human_duration(now - cert.not_after)
                    )
                } else {
                    format!("{} from now ({date})", info.cert_ttl)
                };
                println!("Current context:     {}", info.context);
                println!("Nodes:               {}", or_not_defined(&info.nodes));
                println!("Endpoints:           {}", or_not_defined(&info.endpoints));
                println!("Roles:               {}", or_not_defined(&info.roles));
                println!("Certificate expires: {expires}");
            }
        }
        Ok(())
    }

    fn or_not_defined(values: &[String]) -> String {
        if values.is_empty() {
            "not defined".to_string()
        } else {
            values.join(", ")
        }
    }

    /// Approximate human duration ("11 months", "3 days", "5 hours"), rounded up, so that a
    /// certificate issued for 8760 h a moment ago still shows as "1 year".
    fn human_duration(d: time::Duration) -> String {
        let seconds = d.whole_seconds().abs();
        let hours = (seconds + 3599) / 3600;
        let (n, unit) = match hours {
            h if h >= 24 * 365 => (h / (24 * 365), "year"),
            h if h >= 24 * 30 => (h / (24 * 30), "month"),
            h if h >= 24 => (h / 24, "day"),
            h if seconds >= 3600 => (h, "hour"),
            _ => ((seconds + 59) / 60, "minute"),
        };
        format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
    }
}

mod new {
    use proto::machine::GenerateClientConfigurationRequest;

    use super::*;
    use crate::connection::{Session, block_on};
    use crate::failures::Failures;
    use crate::output::FileSet;

    /// Asks one (control plane) node for a client certificate and writes the talosconfig it
    /// returns.
    pub fn run(args: NewArgs, global: &GlobalArgs) -> anyhow::Result<()> {
        let ttl = machineconfig::parse_go_duration(&args.crt_ttl)
            .map_err(|e| anyhow::anyhow!("--crt-ttl {:?}: {e}", args.crt_ttl))?;
        let request = GenerateClientConfigurationRequest {
            roles: args.roles,
            crt_ttl: Some(prost_types::Duration::try_from(ttl).context("--crt-ttl is too large")?),
        };
        block_on(async {
            let session = Session::open(global).await?;
            session.require_one_node("config new")?;
            let mut failures = Failures::default();
            for target in session.targets() {
                let reply = target
                    .machine()
                    .generate_client_configuration(target.request(request.clone())?)
                    .await;
                for (_, generated) in
                    target.unary(reply.map(|r| r.into_inner().messages), &mut failures)
                {
                    let mut files = FileSet::default();
                    files.add(args.path.clone(), generated.talosconfig, 0o600);
                    files.write(args.force)?;
                }
            }
            failures.finish()
        })
    }
}
