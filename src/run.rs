//! One run of the checks, from the settings the command line parsed to the exit code: plan
//! (profile, --only/--skip, the checks an install feeds, what runs on the nodes) → render
//! the install → run the phases here while the node pods run → fix and re-check → report.
//! `cli.rs` only parses arguments into `Settings`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::check::Ctx;
use crate::engine::{self, Planned};
use crate::fix;
use crate::install::render;
use crate::install::{Install, InstallSpec};
use crate::kube::KubeAccess;
use crate::profile::{self, Profile};
use crate::report::{self, Human, Progress};
use crate::resolve::Resolver;

/// The report's form on stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Human,
    Json,
    Junit,
    /// Compact JSON under 4 KiB, for a pod's termination message (`preflight nodes`).
    Termination,
}

/// Node checks on every node (`--all-nodes`, `preflight nodes`): a pod per node.
#[derive(Clone, Debug)]
pub struct NodeSettings {
    pub all_nodes: bool,
    pub node_selector: Option<String>,
    pub image: Option<String>,
    pub parallel: usize,
    pub pod_namespace: Option<String>,
    pub leftover_age: Duration,
}

/// What the command line asked of this run.
#[derive(Clone, Debug)]
pub struct Settings {
    pub profile: Option<String>,
    pub only: Vec<String>,
    pub skip: Vec<String>,
    pub output: Output,
    pub json_schema: u32,
    pub fix: bool,
    pub unsafe_fixes: bool,
    pub dry_run: bool,
    pub yes: bool,
    pub host_root: PathBuf,
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub timeout: Duration,
    pub no_progress: bool,
    pub termination_log: Option<PathBuf>,
    /// The install given on the command line (it wins over the profile's `install:`).
    pub install: Option<InstallSpec>,
    /// `preflight nodes`: only the node checks, on every node.
    pub nodes_only: bool,
    pub nodes: NodeSettings,
}

/// A run that ended before any check ran.
#[derive(Debug)]
pub enum Stop {
    /// A usage or profile error (exit 2), in these words.
    Usage(String),
}

impl Stop {
    fn usage(msg: impl std::fmt::Display) -> Stop {
        Stop::Usage(msg.to_string())
    }
}

/// `--only` / `--skip` entries: a check id, or a phase name for all of its checks.
pub fn selects(entry: &str, def: &crate::check::CheckDef) -> bool {
    entry == def.meta.id || entry == def.meta.phase.name()
}

fn is_phase(entry: &str) -> bool {
    crate::check::Phase::ALL.iter().any(|p| p.name() == entry)
}

/// The checks to run: the profile's (plus `extra` with their defaults), narrowed by
/// --only / --skip.
fn planned_checks(profile: Profile, opts: &Settings, extra: &[&str]) -> Result<Vec<Planned>, String> {
    for id in opts.only.iter().chain(&opts.skip) {
        if crate::checks::find(id).is_none() && !is_phase(id) {
            return Err(profile::unknown_id_message(id));
        }
    }
    let mut plan: Vec<Planned> = profile
        .checks
        .into_iter()
        .filter(|(d, _)| opts.only.is_empty() || opts.only.iter().any(|o| selects(o, d)))
        .filter(|(d, _)| !opts.skip.iter().any(|s| selects(s, d)))
        .map(|(def, check)| Planned {
            def,
            check: Arc::from(check),
        })
        .collect();
    // --only may name a check the profile lacks: run it with its default parameters; so do
    // the checks an install feeds, when --only/--skip let them.
    let fed = extra.iter().map(|s| s.to_string()).filter(|id| {
        crate::checks::find(id).is_some_and(|d| {
            (opts.only.is_empty() || opts.only.iter().any(|o| selects(o, d)))
                && !opts.skip.iter().any(|s| selects(s, d))
        })
    });
    let wanted: Vec<String> = opts.only.iter().cloned().chain(fed).collect();
    for id in &wanted {
        if plan.iter().any(|p| p.def.meta.id == id) || opts.skip.contains(id) {
            continue;
        }
        if let (Some(def), Some(built)) = (crate::checks::find(id), crate::checks::build_default(id)) {
            let check = built.map_err(|e| format!("{id}: {e}"))?;
            plan.push(Planned {
                def,
                check: Arc::from(check),
            });
        }
    }
    Ok(plan)
}

/// Render the install once, with the target cluster's capabilities when the cluster phase
/// runs and the cluster answers.
async fn render_install(
    ctx: &Ctx,
    spec: &InstallSpec,
    with_cluster: bool,
    progress: &Progress,
) -> Result<Install, render::RenderError> {
    let caps = if with_cluster {
        ctx.kube
            .capabilities()
            .await
            .map_err(|e| format!("the cluster did not answer ({e})"))
    } else {
        Err("the cluster phase does not run".to_string())
    };
    // `helm upgrade [--install]` of a release that exists is an upgrade: .Release.IsUpgrade.
    let mut spec = spec.clone();
    if let (InstallSpec::Chart(c), true) = (&mut spec, with_cluster && caps.is_ok()) {
        if matches!(c.command, Some(crate::install::HelmCommand::Upgrade { .. })) {
            c.is_upgrade = ctx
                .kube
                .helm_revisions(&c.namespace, &c.release)
                .await
                .is_ok_and(|revisions| !revisions.is_empty());
        }
    }
    // A large helmfile renders for a while; a hung helm must still end.
    let mut tools = ctx.render_tools(ctx.exec_timeout() * 6);
    tools.progress = progress.line();
    let rendered = render::render(&spec, &tools, caps).await;
    if let Some(b) = &tools.progress {
        b.finish_and_clear();
    }
    rendered
}

/// The report's first line about the install: what was rendered, and for which cluster.
fn install_line(ctx: &Ctx) -> Option<String> {
    Some(match ctx.install()? {
        Ok(i) => {
            let target = match &i.rendered_for {
                Ok(k) => format!("rendered for {k}"),
                Err(why) => format!("rendered without the cluster's capabilities: {why}"),
            };
            let unrendered = i.unrendered().count();
            let not = if unrendered > 0 {
                format!(" ({unrendered} did not render: {})", crate::check::RENDER_CHECK)
            } else {
                String::new()
            };
            format!(
                "install: {}: {} release(s){not}, {} object(s), {target}",
                i.what,
                i.releases.len(),
                i.objects.len()
            )
        }
        Err(e) => format!("install: could not be rendered; every check that needs it reports error:\n{e}"),
    })
}

/// What the node pods need from the profile and the command line.
struct NodeSetup {
    image: String,
    namespace: String,
    profile_yaml: String,
    fix_args: Vec<String>,
}

fn nodes_setup(
    opts: &Settings,
    profile_name: &str,
    section: &profile::NodesSection,
    registries: &[crate::registry::RegistrySettings],
) -> Result<NodeSetup, String> {
    let image = match &opts.nodes.image {
        Some(i) => i.clone(),
        None => profile::default_image(section, registries)?,
    };
    crate::install::ImageRef::parse(&image).map_err(|e| format!("--image: {e}"))?;
    let namespace = opts
        .nodes
        .pod_namespace
        .clone()
        .or_else(|| section.namespace.clone())
        .unwrap_or_else(|| "default".to_string());
    // Each pod fixes what it observed on its own node; nothing can be confirmed there.
    let mut fix_args = Vec::new();
    if opts.fix && !opts.dry_run {
        if !opts.yes {
            return Err("--fix on every node applies the fixes in the pods, where nothing can be confirmed: add --yes (or --dry-run to see what they would do)".to_string());
        }
        fix_args.extend(["--fix".to_string(), "--yes".to_string()]);
        if opts.unsafe_fixes {
            fix_args.push("--unsafe-fixes".to_string());
        }
    }
    Ok(NodeSetup {
        image,
        namespace,
        profile_yaml: profile::text_for_nodes(profile_name)?,
        fix_args,
    })
}

/// What a run carries from plan to report, whatever state its context is in.
struct Stages {
    settings: Settings,
    profile_name: String,
    install_spec: Option<InstallSpec>,
    /// The checks to run here.
    plan: Vec<Planned>,
    /// The node checks to run in a pod per node instead (`--all-nodes`, `preflight nodes`).
    node_plan: Vec<Planned>,
    node_setup: Option<NodeSetup>,
    progress: Progress,
}

/// A run planned: what runs here and on the nodes, and the context the checks will share
/// (still its own: the render writes the install into it).
pub struct Run {
    stages: Stages,
    ctx: Ctx,
}

/// A run whose install is rendered: its context is shared by every check from here on.
pub struct Rendered {
    stages: Stages,
    ctx: Arc<Ctx>,
    human: Human,
}

impl Run {
    /// Plan, render, run the phases (and the node pods), fix and re-check, report: the exit
    /// code, or a usage error before anything ran.
    pub fn start(settings: Settings) -> Result<i32, Stop> {
        let run = Run::plan(settings)?;
        let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
            Ok(r) => r,
            Err(e) => {
                eprintln!("preflight: error: cannot start the async runtime: {e}");
                return Ok(3);
            }
        };
        let mut run = run.render(&runtime)?;
        let mut reports = match run.run_phases(&runtime) {
            Ok(r) => r,
            Err(code) => return Ok(code),
        };
        run.fix(&runtime, &mut reports);
        Ok(run.report(&runtime, &reports))
    }

    /// The profile, narrowed by --only/--skip, the checks an install feeds, and which node
    /// checks run on the nodes; the context they will share.
    fn plan(settings: Settings) -> Result<Run, Stop> {
        let opts = &settings;
        let nodes_only = settings.nodes_only;
        // Decided before anything runs: a setup script that forgot --yes gets a usage error at
        // once, not a whole run followed by a refusal and no report.
        if opts.fix && !opts.dry_run && !opts.yes && !std::io::stdin().is_terminal() {
            return Err(Stop::usage(
                "--fix needs --yes when stdin is not a terminal (nothing can be confirmed); add --yes to apply, or --dry-run to see the plan",
            ));
        }
        let profile_name = opts.profile.clone().unwrap_or_else(|| "default".to_string());
        let mut profile = match profile::load(&profile_name) {
            Ok(p) => p,
            Err(e) => return Err(Stop::usage(e)),
        };
        // The command line's install wins over the profile's `install:`.
        let install_spec = match opts.install.clone() {
            Some(spec) => Some(spec),
            None => profile.install.take(),
        };
        let mut release = profile.release.clone();
        if let (None, Some(InstallSpec::Chart(c))) = (&release, &install_spec) {
            release = Some(crate::check::Release {
                name: c.release.clone(),
                namespace: c.namespace.clone(),
            });
        }
        let section = profile.registries.clone();
        let nodes_section = profile.nodes.clone();
        // With an install and no --profile: the default profile plus every check it feeds.
        let fed: Vec<&str> = if install_spec.is_some() && opts.profile.is_none() {
            crate::checks::registry()
                .iter()
                .filter(|d| d.meta.install == crate::check::InstallUse::Fed)
                .map(|d| d.meta.id)
                .collect()
        } else {
            Vec::new()
        };
        let mut plan = match planned_checks(profile, opts, &fed) {
            Ok(p) => p,
            Err(e) => return Err(Stop::usage(e)),
        };
        let all_nodes = nodes_only || opts.nodes.all_nodes;
        if nodes_only {
            plan.retain(|p| p.def.meta.phase == crate::check::Phase::Node);
            if plan.is_empty() {
                return Err(Stop::usage(
                    "the profile (with --only/--skip) has no node checks to run on the nodes",
                ));
            }
        }
        // With --all-nodes the node checks run in the pods, not here.
        let node_plan: Vec<Planned> = if all_nodes {
            let (on_nodes, here): (Vec<Planned>, Vec<Planned>) = plan
                .into_iter()
                .partition(|p| p.def.meta.phase == crate::check::Phase::Node);
            plan = here;
            on_nodes
        } else {
            Vec::new()
        };
        let node_setup = if node_plan.is_empty() {
            None
        } else {
            match nodes_setup(opts, &profile_name, &nodes_section, &section) {
                Ok(s) => Some(s),
                Err(e) => return Err(Stop::usage(e)),
            }
        };
        let registries = profile::registries(&section, plan.iter().map(|p| p.check.as_ref()));
        let planned_access = plan.iter().map(|p| (p.def.meta.id, p.check.access())).collect();

        let resolver = Resolver::new(&opts.host_root, opts.timeout);
        let ctx = Ctx {
            host_root: opts.host_root.clone(),
            probe_timeout: opts.timeout,
            path_env: std::env::var_os("PATH"),
            release,
            kube: KubeAccess::new(
                opts.kubeconfig.clone(),
                opts.context.clone(),
                opts.timeout,
                resolver.clone(),
            ),
            resolver,
            registries,
            planned_access,
            cleanups: Default::default(),
            install: None,
            install_spec: install_spec.clone(),
        };
        let progress = Progress::new(!opts.no_progress && std::io::stderr().is_terminal());
        Ok(Run {
            stages: Stages {
                profile_name,
                install_spec,
                plan,
                node_plan,
                node_setup,
                progress,
                settings,
            },
            ctx,
        })
    }

    /// The install, rendered once when a planned check reads it (the render's own check
    /// joins the plan); then the context is shared and the API server's connection warmed.
    fn render(self, runtime: &tokio::runtime::Runtime) -> Result<Rendered, Stop> {
        let Run { mut stages, mut ctx } = self;
        let Stages {
            settings: opts,
            install_spec,
            plan,
            node_plan,
            progress,
            ..
        } = &mut stages;
        // helm runs only for a check that reads what it renders (`--chart x --only node` needs
        // no helm on a node).
        let install_read = plan
            .iter()
            .chain(node_plan.iter())
            .any(|p| p.def.meta.install.reads());
        if let Some(spec) = install_spec.as_ref().filter(|_| install_read) {
            // The render's own check reports what did not render; the others cite it.
            let render_id = crate::check::RENDER_CHECK;
            if let (Some(def), Some(Ok(check))) = (
                crate::checks::find(render_id),
                crate::checks::build_default(render_id),
            ) {
                if !plan.iter().any(|p| p.def.meta.id == render_id)
                    && !opts.skip.iter().any(|s| selects(s, def))
                {
                    plan.push(Planned {
                        def,
                        check: Arc::from(check),
                    });
                }
            }
            let with_cluster = plan
                .iter()
                .any(|p| p.def.meta.phase == crate::check::Phase::Cluster);
            ctx.install = match runtime.block_on(render_install(&ctx, spec, with_cluster, progress)) {
                Ok(i) => Some(Ok(Arc::new(i))),
                Err(render::RenderError::Usage(e)) => return Err(Stop::usage(e)),
                Err(render::RenderError::Other(e)) => Some(Err(e)),
            };
        }
        let ctx = Arc::new(ctx);
        // The API server's connection (TCP, TLS, HTTP/2) and its /version are made while the
        // tools, node and network phases run, so the cluster phase starts on a warm connection.
        // Only when a cluster check runs: `--skip cluster` on an air-gapped node stays silent.
        if plan
            .iter()
            .any(|p| p.def.meta.phase == crate::check::Phase::Cluster)
        {
            let warm = Arc::clone(&ctx);
            runtime.spawn(async move {
                let _ = warm.kube.server_version().await;
            });
        }
        let color =
            std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Ok(Rendered {
            stages,
            ctx,
            human: Human::new(color),
        })
    }
}

impl Rendered {
    /// The phases here, each printed as it ends, while the node pods run; the node reports
    /// join after the tools phase. `Err`: the exit code of a run that ended there.
    fn run_phases(
        &mut self,
        runtime: &tokio::runtime::Runtime,
    ) -> Result<Vec<crate::vocab::CheckReport>, i32> {
        let Rendered {
            stages:
                Stages {
                    settings: opts,
                    install_spec,
                    plan,
                    node_plan,
                    node_setup,
                    progress,
                    ..
                },
            ctx,
            human,
        } = self;
        let (opts, ctx, progress, human) = (&*opts, &*ctx, &*progress, &*human);
        let nodes_only = opts.nodes_only;
        let output = opts.output;
        if output == Output::Human {
            if let Some(line) = install_line(ctx) {
                println!("{line}\n");
            } else if install_spec.is_some() {
                println!("install: not rendered: none of the checks that run reads it\n");
            }
        }
        engine::sort(plan);
        // What a node check reads from the install goes to the pods in its parameters (they do
        // not render it); one that cannot say is reported here and not sent.
        let mut node_profile = node_setup.as_ref().map(|s| s.profile_yaml.clone());
        let mut not_sent = Vec::new();
        let mut node_checks = Vec::new();
        for p in node_plan.iter() {
            match (p.check.params_for_nodes(ctx), node_profile.as_mut()) {
                (Ok(None), _) | (_, None) => node_checks.push(p.def),
                (Ok(Some(params)), Some(yaml)) => match profile::with_params(yaml, p.def.meta.id, params) {
                    Ok(y) => {
                        *yaml = y;
                        node_checks.push(p.def);
                    }
                    Err(e) => not_sent.push(crate::nodes::not_run(p.def, &e)),
                },
                (Err(e), Some(_)) => not_sent.push(crate::nodes::not_run(p.def, &e)),
            }
        }
        let nodes_run =
            node_setup
                .as_ref()
                .filter(|_| !node_checks.is_empty())
                .map(|s| crate::nodes::NodesRun {
                    checks: node_checks.clone(),
                    profile_yaml: node_profile.clone().unwrap_or_default(),
                    image: &s.image,
                    namespace: &s.namespace,
                    selector: opts.nodes.node_selector.as_deref(),
                    parallel: opts.nodes.parallel,
                    // A pod is pulled, started and run: far more than one probe.
                    pod_deadline: opts.timeout * 12,
                    fix_args: s.fix_args.clone(),
                    leftover_age: opts.nodes.leftover_age,
                    progress: progress.line(),
                });
        // The pods run while this host's phases do: the run takes as long as the longer.
        let (mut reports, on_nodes) = runtime.block_on(async {
            let here = engine::run(
                plan,
                Arc::clone(ctx),
                &[],
                |phase, reports| {
                    if output == Output::Human {
                        let mut stdout = std::io::stdout().lock();
                        let _ = stdout.write_all(human.phase(phase, reports).as_bytes());
                        let _ = stdout.flush();
                    }
                },
                progress,
            );
            let there = async {
                match &nodes_run {
                    Some(r) => Some(crate::nodes::run(&ctx.kube, r).await),
                    None => None,
                }
            };
            futures::join!(here, there)
        });
        let node_reports = match on_nodes {
            None => Vec::new(),
            Some(Ok(r)) => r,
            Some(Err(crate::nodes::NodesError::Interrupted(m))) => {
                eprintln!("preflight: {m}");
                return Err(130);
            }
            Some(Err(crate::nodes::NodesError::Failed(m))) if nodes_only => {
                eprintln!("preflight: nodes: {m}");
                return Err(3);
            }
            Some(Err(crate::nodes::NodesError::Failed(m))) => node_checks
                .iter()
                .map(|def| crate::nodes::not_run(def, &m))
                .collect(),
        };
        let mut node_reports = node_reports;
        node_reports.extend(not_sent);
        if !node_reports.is_empty() {
            if output == Output::Human {
                print!("{}", human.section("node (on every node)", &node_reports));
            }
            let at = reports
                .iter()
                .position(|r| r.phase != crate::check::Phase::Tools)
                .unwrap_or(reports.len());
            reports.splice(at..at, node_reports);
        }
        Ok(reports)
    }

    /// `--fix`: apply the fixes the run found, and run those checks (and their dependents)
    /// again.
    fn fix(&self, runtime: &tokio::runtime::Runtime, reports: &mut [crate::vocab::CheckReport]) {
        let (opts, plan, ctx, human) = (&self.stages.settings, &self.stages.plan, &self.ctx, &self.human);
        let output = opts.output;
        if opts.fix {
            let fix_opts = fix::FixOptions {
                unsafe_fixes: opts.unsafe_fixes,
                dry_run: opts.dry_run,
                yes: opts.yes,
            };
            let out = fix::PlanOut {
                to_stdout: output == Output::Human,
            };
            match runtime.block_on(fix::run(plan, reports, ctx, &fix_opts, &out)) {
                fix::FixRun::Unchanged => {}
                fix::FixRun::Applied => {
                    if output == Output::Human {
                        let changed: Vec<_> = reports
                            .iter()
                            .filter(|r| r.fixed || r.fix_error.is_some())
                            .cloned()
                            .collect();
                        print!("\n{}", human.section("after --fix", &changed));
                    }
                }
            }
        }
    }

    /// The report in the asked form on stdout (and the termination-message file), after the
    /// cleanups a check's deadline cut off; the exit code.
    fn report(&self, runtime: &tokio::runtime::Runtime, reports: &[crate::vocab::CheckReport]) -> i32 {
        let (opts, ctx, human, profile_name) = (
            &self.stages.settings,
            &self.ctx,
            &self.human,
            &self.stages.profile_name,
        );
        let output = opts.output;
        // Whatever a check created and could not remove before its deadline goes now.
        runtime.block_on(ctx.cleanups.finish(opts.timeout * 2));
        let stats_requests = ctx.kube.requests();
        let rendered = match output {
            Output::Human => human.summary(reports),
            Output::Json => {
                let install = ctx
                    .install()
                    .map(|i| crate::report::InstallSummary::of(i).with_command(ctx.install_spec.as_ref()));
                report::json(profile_name, install, reports, opts.json_schema) + "\n"
            }
            Output::Termination => report::termination(reports),
            Output::Junit => match report::junit(profile_name, reports) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("preflight: error: cannot render JUnit: {e}");
                    return 3;
                }
            },
        };
        print!("{rendered}");
        let _ = std::io::stdout().flush();
        if let (Output::Termination, Some(path)) = (output, &opts.termination_log) {
            if let Err(e) = std::fs::write(path, &rendered) {
                // A failed exit makes the kubelet fall back to the log, where the report is too.
                eprintln!(
                    "preflight: error: cannot write the termination message to {}: {e}",
                    path.display()
                );
                return match engine::exit_code(reports) {
                    0 => 3,
                    code => code,
                };
            }
        }
        if std::env::var_os("PREFLIGHT_STATS").is_some() {
            eprintln!("preflight: {} Kubernetes API requests", stats_requests);
            // preflight's own peak RSS: `time -f %M` would report the helm it started.
            if let Some(hwm) = std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_string))
            {
                eprintln!("preflight: peak RSS {}", hwm.trim_start_matches("VmHWM:").trim());
            }
        }
        engine::exit_code(reports)
    }
}
