//! The command line: the contract setup scripts rely on (see README "Command line").

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::install::{argv, ChartSpec, HelmfileSpec, InstallSpec};
use crate::profile;
use crate::resolve::Resolver;
use crate::run;

/// Exit code for usage and profile errors: nothing ran.
pub const EXIT_USAGE: i32 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "preflight",
    version,
    disable_version_flag = true,
    about = "Checks a host, its network and its Kubernetes cluster before helm install / helmfile sync, with the exact fix for each problem.",
    after_help = "Exit codes: 0 nothing failed (warnings allowed), 1 a check failed, 2 usage or profile error (nothing ran), 3 a check could not be evaluated and none failed."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    opts: RunOpts,
    /// The installer's exact command, after `--`: `helm install|upgrade [--install] NAME
    /// CHART [helm's flags]` or `helmfile [global flags] sync|apply|diff|template [flags]`.
    #[arg(last = true, value_name = "HELM_OR_HELMFILE_COMMAND")]
    command_line: Vec<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the checks of the profile (the default command).
    Check,
    /// The checks, in run order: id, phase, title (all checks, or those of --profile).
    List,
    /// Why a check exists, what it looks at, and the fix.
    Explain {
        /// A check id, e.g. node.conntrack
        id: String,
    },
    /// Shell completion, as `kubectl completion` / `helm completion`:
    /// `source <(preflight completion bash)`. Check ids complete for --only, --skip, explain.
    Completion {
        #[arg(value_enum)]
        shell: CompletionShell,
    },
    /// Run the profile's node checks on every node of the cluster, in a pod per node (the
    /// image from `preflight image push`), and report each check per node plus a roll-up.
    /// The same as `preflight --all-nodes --only node`.
    Nodes,
    /// The preflight image, for running checks in pods (air-gapped clusters pull it from
    /// their private registry).
    Image {
        #[command(subcommand)]
        action: ImageCommand,
    },
    /// The helm plugin form: `helm preflight install NAME CHART [helm install flags]`.
    /// Checks the install helm is about to do; preflight's own options go before `install`.
    Install {
        /// NAME CHART, then any flag of helm install, read as `-- helm install …` reads it
        /// (those that change nothing preflight models are listed in -o json's
        /// install.not_modeled; one helm does not have is refused)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 2.., value_name = "NAME CHART [FLAGS]")]
        args: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
enum ImageCommand {
    /// Publish this very binary as a minimal OCI image (one layer: the static binary at
    /// /preflight; the entrypoint runs it) through the registry's HTTP API, with the
    /// profile's `registries:` settings (insecure, CA, credentials, else
    /// ~/.docker/config.json). Prints the digest; the same binary always gives the same one.
    Push {
        /// REGISTRY/REPOSITORY:TAG, e.g. 10.0.0.5:5000/tools/preflight:0.1.0 (default: the
        /// profile's `nodes: {image:}`, else preflight:VERSION in its one `registries:` entry)
        reference: Option<String>,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

/// The command-line definition, with every check id and phase as the values of `--only`,
/// `--skip` and `explain` (for completion and the man page; parsing stays ours, so
/// `--only a,b` and the did-you-mean messages keep working).
pub fn command() -> clap::Command {
    use clap::builder::PossibleValuesParser;
    let mut ids: Vec<&'static str> = crate::check::Phase::ALL.iter().map(|p| p.name()).collect();
    ids.extend(crate::checks::registry().iter().map(|d| d.meta.id));
    let checks: Vec<&'static str> = crate::checks::registry().iter().map(|d| d.meta.id).collect();
    <Cli as clap::CommandFactory>::command()
        .mut_arg("only", |a| a.value_parser(PossibleValuesParser::new(ids.clone())))
        .mut_arg("skip", |a| a.value_parser(PossibleValuesParser::new(ids.clone())))
        .mut_subcommand("explain", |c| {
            c.mut_arg("id", |a| {
                a.value_parser(PossibleValuesParser::new(checks.clone()))
            })
        })
}

/// `preflight 0.1.0 (commit 1a2b3c4d5e6f, static, x86_64-unknown-linux-gnu)`.
pub fn version_line() -> String {
    let linkage = if cfg!(target_feature = "crt-static") {
        "static"
    } else {
        "dynamically linked"
    };
    format!(
        "preflight {} (commit {}, {linkage}, {})",
        env!("CARGO_PKG_VERSION"),
        env!("PREFLIGHT_COMMIT"),
        env!("PREFLIGHT_TARGET")
    )
}

fn image_push(opts: &RunOpts, reference: Option<&str>) -> i32 {
    let profile_name = opts.profile.clone().unwrap_or_else(|| "default".to_string());
    let profile = match profile::load(&profile_name) {
        Ok(p) => p,
        Err(e) => return usage_error(e),
    };
    let reference = match reference {
        Some(r) => r.to_string(),
        None => match profile::default_image(&profile.nodes, &profile.registries) {
            Ok(r) => r,
            Err(e) => return usage_error(e),
        },
    };
    let reference = reference.as_str();
    let target = match crate::install::ImageRef::parse(reference) {
        Ok(t) if !t.reference.starts_with("sha256:") => t,
        Ok(_) => return usage_error("image push takes a tag (REGISTRY/REPO:TAG), not a digest"),
        Err(e) => return usage_error(e),
    };
    let registries = profile::registries(
        &profile.registries,
        profile.checks.iter().map(|(_, c)| c.as_ref()),
    );
    let settings = registries.get(&target.registry);
    let binary = match std::env::current_exe().and_then(std::fs::read) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("preflight: error: cannot read the running binary: {e}");
            return 3;
        }
    };
    let image = match crate::oci::build(&binary) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("preflight: error: {e}");
            return 3;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("preflight: error: cannot start the async runtime: {e}");
            return 3;
        }
    };
    let resolver = Resolver::new(&opts.host_root, opts.timeout);
    match runtime.block_on(crate::oci::push(
        &resolver,
        &settings,
        &target,
        &image,
        opts.timeout,
    )) {
        Ok(pushed) => {
            for (what, digest, size, uploaded) in &pushed.blobs {
                let how = if *uploaded { "uploaded" } else { "already there" };
                println!("{what:<8} {digest} {:>10} bytes  {how}", size);
            }
            println!(
                "manifest {} {:>10} bytes  pushed as {reference}",
                pushed.digest,
                image.manifest.bytes.len()
            );
            println!("{}/{}@{}", target.registry, target.repository, pushed.digest);
            0
        }
        Err(e) => {
            eprintln!("preflight: image push {reference} failed: {e}");
            1
        }
    }
}

fn completion(shell: CompletionShell) -> i32 {
    let mut cmd = command();
    let mut out = std::io::stdout().lock();
    match shell {
        CompletionShell::Bash => {
            clap_complete::generate(clap_complete::Shell::Bash, &mut cmd, "preflight", &mut out)
        }
        CompletionShell::Zsh => {
            clap_complete::generate(clap_complete::Shell::Zsh, &mut cmd, "preflight", &mut out)
        }
        CompletionShell::Fish => {
            clap_complete::generate(clap_complete::Shell::Fish, &mut cmd, "preflight", &mut out)
        }
    }
    0
}

/// The helm plugin's `install NAME CHART [flags]` with preflight's own options anywhere among
/// them: helm's part (read by the same parser as `-- helm install …`), and preflight's
/// options as argv for clap. A flag helm and preflight both have is helm's, except
/// `-o`/`--output`, which picks preflight's report.
fn split_plugin_args(args: &[String]) -> (Vec<String>, Vec<String>) {
    use clap::CommandFactory;
    let cli = Cli::command();
    // A preflight option, and whether it takes a value.
    let preflight_option = |flag: &str| -> Option<bool> {
        cli.get_arguments()
            .find(|a| {
                flag.strip_prefix("--").is_some_and(|l| a.get_long() == Some(l))
                    || (flag.len() == 2 && flag.starts_with('-') && a.get_short() == flag.chars().nth(1))
            })
            .map(|a| a.get_action().takes_values())
    };
    let mut helm = vec!["install".to_string()];
    let mut own = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, _)) if a.starts_with('-') => (f, true),
            _ => (a.as_str(), false),
        };
        let ours = match (flag, crate::install::argv::helm_flag(flag)) {
            ("-o" | "--output", _) | (_, None) if a.starts_with('-') => preflight_option(flag),
            _ => None,
        };
        let to = if ours.is_some() { &mut own } else { &mut helm };
        to.push(a.clone());
        if ours == Some(true) && !inline {
            if let Some(v) = it.next() {
                own.push(v.clone());
            }
        }
    }
    (helm, own)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Output {
    Human,
    Json,
    Junit,
    /// Compact JSON under 4 KiB, for a pod's termination message (`preflight nodes`).
    #[value(hide = true)]
    Termination,
}

#[derive(Args, Debug)]
struct RunOpts {
    /// Embedded profile name (default, bkce7, kubevela) or a YAML file.
    #[arg(long, global = true, value_name = "NAME|PATH")]
    profile: Option<String>,
    /// Run only these checks (comma-separated ids, or phase names: tools, node, network, cluster).
    #[arg(long, global = true, value_delimiter = ',', value_name = "ID[,ID..]")]
    only: Vec<String>,
    /// Do not run these checks (ids or phase names; `--skip cluster` on a node without cluster access).
    #[arg(long, global = true, value_delimiter = ',', value_name = "ID[,ID..]")]
    skip: Vec<String>,
    /// Output format; json and junit print one document on stdout and nothing else.
    #[arg(short = 'o', long, global = true, value_enum, default_value = "human")]
    output: Output,
    /// With `-o json`: the report's schema. 2 (default) gives each check's findings with
    /// their codes and subjects; 1 is the one-message-per-check document of earlier releases.
    #[arg(long, global = true, value_name = "N", default_value = "2", value_parser = clap::value_parser!(u32).range(1..=2))]
    json_schema: u32,
    /// Apply the safe fixes.
    #[arg(long, global = true)]
    fix: bool,
    /// Also apply unsafe (destructive) fixes.
    #[arg(long, global = true, requires = "fix")]
    unsafe_fixes: bool,
    /// With --fix: print the plan, change nothing.
    #[arg(long, global = true, requires = "fix")]
    dry_run: bool,
    /// Do not ask for confirmation.
    #[arg(long, global = true)]
    yes: bool,
    /// Read /proc, /etc, /lib/modules and disk paths under this directory (the host mounted in a pod).
    #[arg(long, global = true, value_name = "DIR", default_value = "/")]
    host_root: PathBuf,
    /// Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, global = true, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,
    /// Kubeconfig context to use.
    #[arg(long, global = true, value_name = "NAME")]
    context: Option<String>,
    /// Bound for one network probe, e.g. 5s, 500ms.
    #[arg(long, global = true, value_name = "DURATION", default_value = "5s", value_parser = parse_timeout)]
    timeout: Duration,
    /// No progress spinner on stderr.
    #[arg(long, global = true)]
    no_progress: bool,
    /// With `-o termination`: also write the report to this file, the container's
    /// `terminationMessagePath`, which a kubelet reads first (its log only when the file is
    /// empty and the container failed).
    #[arg(long, global = true, value_name = "PATH", hide = true)]
    termination_log: Option<PathBuf>,
    #[command(flatten)]
    install: InstallOpts,
    #[command(flatten)]
    nodes: NodeOpts,
}

/// Node checks on every node (`--all-nodes`, `preflight nodes`): a pod per node.
#[derive(Args, Debug, Default)]
#[command(next_help_heading = "Every node (--all-nodes, preflight nodes)")]
struct NodeOpts {
    /// Run the node checks on every (selected) node of the cluster, each in a pod, instead
    /// of on this host; the other phases run here as usual.
    #[arg(long, global = true)]
    all_nodes: bool,
    /// Only the nodes with these labels (as kubectl -l).
    #[arg(long, global = true, value_name = "LABELS")]
    node_selector: Option<String>,
    /// The preflight image the pods run (default: the profile's `nodes: {image:}`, else
    /// preflight:VERSION in the profile's one registry, as `preflight image push` names it).
    #[arg(long, global = true, value_name = "REF")]
    image: Option<String>,
    /// Nodes checked at once.
    #[arg(long, global = true, default_value_t = 50, value_name = "N")]
    parallel: usize,
    /// Where the pods and their ConfigMap go (default: the profile's `nodes: {namespace:}`,
    /// else default); hostPath needs the privileged Pod Security level there.
    #[arg(long, global = true, value_name = "NS")]
    pod_namespace: Option<String>,
    /// Pods and ConfigMaps of an interrupted earlier run older than this are deleted at start.
    #[arg(long, global = true, value_name = "DURATION", default_value = "1h", value_parser = crate::values::parse_duration, hide = true)]
    leftover_age: Duration,
}

/// The install to check, with the arguments the installer gives helm / helmfile.
#[derive(Args, Debug, Default)]
#[command(next_help_heading = "The install (as given to helm / helmfile)")]
struct InstallOpts {
    /// Chart to check: a directory, a .tgz, repo/name or oci://… (as helm takes it).
    #[arg(long, global = true, value_name = "CHART", conflicts_with = "helmfile")]
    chart: Option<String>,
    /// Release name (with --chart).
    #[arg(long, global = true, value_name = "NAME", requires = "chart")]
    release: Option<String>,
    /// Release namespace (with --chart).
    #[arg(short = 'n', long, global = true, value_name = "NS", requires = "chart")]
    namespace: Option<String>,
    /// Values file (with --chart; repeatable).
    #[arg(
        short = 'f',
        long = "values",
        global = true,
        value_name = "FILE",
        requires = "chart"
    )]
    values: Vec<PathBuf>,
    /// --set K=V (with --chart; repeatable).
    #[arg(long, global = true, value_name = "K=V", requires = "chart")]
    set: Vec<String>,
    /// --set-string K=V (with --chart; repeatable).
    #[arg(long, global = true, value_name = "K=V", requires = "chart")]
    set_string: Vec<String>,
    /// With --chart: the chart version; alone: print preflight's version.
    #[arg(short = 'V', long, global = true, value_name = "VERSION", num_args = 0..=1)]
    version: Option<Option<String>>,
    /// The install creates the release namespace (helm --create-namespace).
    #[arg(long, global = true, requires = "chart")]
    create_namespace: bool,
    /// The install skips the chart's crds/ (helm --skip-crds).
    #[arg(long, global = true, requires = "chart")]
    skip_crds: bool,
    /// The install runs no hooks (helm --no-hooks).
    #[arg(long, global = true, requires = "chart")]
    no_hooks: bool,
    /// The install skips helm's client-side OpenAPI validation (helm --disable-openapi-validation).
    #[arg(long, global = true, requires = "chart")]
    disable_openapi_validation: bool,
    /// helmfile.yaml to check (as helmfile --file takes it).
    #[arg(long, global = true, value_name = "FILE")]
    helmfile: Option<PathBuf>,
    /// helmfile --environment.
    #[arg(short = 'e', long, global = true, value_name = "ENV", requires = "helmfile")]
    environment: Option<String>,
    /// helmfile --selector K=V (repeatable).
    #[arg(short = 'l', long, global = true, value_name = "K=V", requires = "helmfile")]
    selector: Vec<String>,
}

impl InstallOpts {
    /// The install given on the command line, if any: the installer's own command after
    /// `--`, or the short forms.
    fn spec(&self, command_line: &[String]) -> Result<Option<argv::Parsed>, String> {
        if !command_line.is_empty() {
            if self.chart.is_some() || self.helmfile.is_some() {
                return Err(
                    "give the install once: --chart / --helmfile, or the installer's command after --".into(),
                );
            }
            return argv::parse(command_line).map(Some);
        }
        let parsed = |spec| {
            Some(argv::Parsed {
                spec,
                kubeconfig: None,
                context: None,
            })
        };
        if let Some(chart) = &self.chart {
            let release = self.release.clone().ok_or("--chart needs --release NAME")?;
            let namespace = self.namespace.clone().ok_or("--chart needs --namespace NS")?;
            return Ok(parsed(InstallSpec::Chart(ChartSpec {
                chart: chart.clone(),
                release,
                namespace,
                values: self.values.clone(),
                set: self.set.clone(),
                set_string: self.set_string.clone(),
                version: self.version.clone().flatten(),
                create_namespace: self.create_namespace,
                skip_crds: self.skip_crds,
                no_hooks: self.no_hooks,
                disable_openapi_validation: self.disable_openapi_validation,
                ..Default::default()
            })));
        }
        if let Some(file) = &self.helmfile {
            return Ok(parsed(InstallSpec::Helmfile(HelmfileSpec {
                file: file.clone(),
                environment: self.environment.clone(),
                selectors: self.selector.clone(),
                ..Default::default()
            })));
        }
        Ok(None)
    }
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    match crate::values::parse_duration(s)? {
        d if d.is_zero() => Err("the timeout must be more than zero".to_string()),
        // Deadlines are multiples of it; an hour per probe is already no bound at all.
        d if d > Duration::from_secs(3600) => Err("the timeout must be at most 1h".to_string()),
        d => Ok(d),
    }
}

fn usage_error(msg: impl std::fmt::Display) -> i32 {
    eprintln!("preflight: error: {msg}");
    EXIT_USAGE
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    if cli.opts.install.version == Some(None) {
        println!("{}", version_line());
        return 0;
    }
    if cli.opts.install.version.is_some() && cli.opts.install.chart.is_none() {
        return usage_error(
            "--version VERSION is the chart version and goes with --chart (preflight's own: --version alone)",
        );
    }
    match cli.command {
        Some(Command::List) => list(&cli.opts),
        Some(Command::Explain { ref id }) => explain(id),
        Some(Command::Completion { shell }) => completion(shell),
        Some(Command::Nodes) => with_install(&cli, true),
        Some(Command::Image {
            action: ImageCommand::Push { ref reference },
        }) => image_push(&cli.opts, reference.as_deref()),
        Some(Command::Check) | None => with_install(&cli, false),
        Some(Command::Install { ref args }) => {
            let (helm, own) = split_plugin_args(args);
            // preflight's own options: those before `install` and those among helm's.
            let mut argv: Vec<String> = std::env::args().take_while(|a| a != "install").collect();
            argv.extend(own);
            argv.push("check".to_string());
            let opts = match Cli::try_parse_from(&argv) {
                Ok(c) => c.opts,
                Err(e) => {
                    let _ = e.print();
                    return EXIT_USAGE;
                }
            };
            match argv::helm(&helm) {
                Ok(parsed) => check(&opts, false, Some(parsed)),
                Err(e) => usage_error(e),
            }
        }
    }
}

fn list(opts: &RunOpts) -> i32 {
    let defs: Vec<&'static crate::check::CheckDef> = match &opts.profile {
        None => crate::checks::registry().to_vec(),
        Some(p) => match profile::load(p) {
            Ok(profile) => {
                let mut defs: Vec<_> = profile.checks.iter().map(|(d, _)| *d).collect();
                defs.sort_by_key(|d| crate::checks::run_order(d.meta.id));
                defs
            }
            Err(e) => return usage_error(e),
        },
    };
    let mut out = String::new();
    match opts.output {
        Output::Json => {
            let rows: Vec<serde_json::Value> = defs
                .iter()
                .map(|d| serde_json::json!({"id": d.meta.id, "phase": d.meta.phase, "title": d.meta.title}))
                .collect();
            out = serde_json::to_string_pretty(&rows).unwrap_or_default();
            out.push('\n');
        }
        _ => {
            let width = defs.iter().map(|d| d.meta.id.len()).max().unwrap_or(2).max(2);
            out.push_str(&format!("{:width$}  {:7}  TITLE\n", "ID", "PHASE"));
            for d in defs {
                out.push_str(&format!(
                    "{:width$}  {:7}  {}\n",
                    d.meta.id,
                    d.meta.phase.name(),
                    d.meta.title
                ));
            }
        }
    }
    print!("{out}");
    0
}

/// `preflight explain CHECK` (why it exists, what it reads, its codes) or `explain CODE`
/// (what a finding code means, in each check that reports it).
fn explain(id: &str) -> i32 {
    if let Some(def) = crate::checks::find(id) {
        let m = &def.meta;
        println!(
            "{} ({} phase)\n{}\n\n{}",
            m.id,
            m.phase.name(),
            m.title,
            m.explain
        );
        if !m.requires.is_empty() {
            println!("\nRequires: {}", m.requires.join(", "));
        }
        if !m.codes.is_empty() {
            println!("\nFinding codes (-o json: .checks[].findings[].code):");
            let width = m.codes.iter().map(|c| c.code.len()).max().unwrap_or(0);
            for c in m.codes {
                println!("  {:width$}  {}", c.code, c.explain);
            }
        }
        return 0;
    }
    let found = crate::checks::with_code(id);
    if found.is_empty() {
        return usage_error(if id.contains('.') {
            profile::unknown_id_message(id)
        } else {
            format!("`{id}` is neither a check id nor a finding code (see `preflight list` and README \"Finding codes\")")
        });
    }
    for (def, code) in found {
        println!("{} ({}): {}", code.code, def.meta.id, code.explain);
    }
    0
}

/// The checks, with the install the command line gives (short forms or after `--`).
fn with_install(cli: &Cli, nodes_only: bool) -> i32 {
    match cli.opts.install.spec(&cli.command_line) {
        Ok(parsed) => check(&cli.opts, nodes_only, parsed),
        Err(e) => usage_error(e),
    }
}

/// Run the profile's checks (`nodes_only`: `preflight nodes`, its node checks on every node)
/// on `install`; the cluster its command names is used unless preflight's options name one.
fn check(opts: &RunOpts, nodes_only: bool, install: Option<argv::Parsed>) -> i32 {
    let (install, kubeconfig, context) = match install {
        Some(p) => (Some(p.spec), p.kubeconfig, p.context),
        None => (None, None, None),
    };
    let settings = run::Settings {
        profile: opts.profile.clone(),
        only: opts.only.clone(),
        skip: opts.skip.clone(),
        output: match opts.output {
            Output::Human => run::Output::Human,
            Output::Json => run::Output::Json,
            Output::Junit => run::Output::Junit,
            Output::Termination => run::Output::Termination,
        },
        json_schema: opts.json_schema,
        fix: opts.fix,
        unsafe_fixes: opts.unsafe_fixes,
        dry_run: opts.dry_run,
        yes: opts.yes,
        host_root: opts.host_root.clone(),
        kubeconfig: opts.kubeconfig.clone().or(kubeconfig),
        context: opts.context.clone().or(context),
        timeout: opts.timeout,
        no_progress: opts.no_progress,
        termination_log: opts.termination_log.clone(),
        install,
        nodes_only,
        nodes: run::NodeSettings {
            all_nodes: opts.nodes.all_nodes,
            node_selector: opts.nodes.node_selector.clone(),
            image: opts.nodes.image.clone(),
            parallel: opts.nodes.parallel,
            pod_namespace: opts.nodes.pod_namespace.clone(),
            leftover_age: opts.nodes.leftover_age,
        },
    };
    match run::Run::start(settings) {
        Ok(code) => code,
        Err(run::Stop::Usage(e)) => usage_error(e),
    }
}

#[cfg(test)]
mod man_page {
    #[test]
    fn doc_preflight_1_is_generated_from_this_definition() {
        let mut fresh = Vec::new();
        clap_mangen::Man::new(super::command())
            .render(&mut fresh)
            .unwrap();
        let committed = include_str!("../doc/preflight.1");
        assert!(
            String::from_utf8(fresh).unwrap() == committed,
            "doc/preflight.1 is stale: run scripts/man.sh"
        );
    }
}
