//! The installer's own command line (`-- helm install …`, `-- helmfile … sync`, and the
//! helm plugin's `install NAME CHART …`) read into one install spec, with pflag's rules:
//! `--flag value`, `--flag=value`, `-n value`, `-nvalue`, flags among the positionals.
//! Every flag of helm's install/upgrade (v3.11–v4.1) and helmfile's (v0.166) is known:
//! an unknown one is a usage error naming it, as helm and helmfile refuse it too.

use std::path::PathBuf;

use super::{ChartSpec, HelmCommand, HelmfileCommand, HelmfileSpec, InstallSpec};

/// What a flag does to preflight's model of the install.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Effect {
    /// Read into the spec (namespace, values, …).
    Model,
    /// Changes the render: handed to `helm template` / `helmfile template` as written.
    Render,
    /// helmfile's global flag that changes the state: handed to every helmfile call.
    State,
    /// Accepted; changes nothing preflight models (said in `-o json`'s `install`).
    Ignored,
}

/// A flag: long name, short letter, whether it takes a value, its effect.
/// `Opt` flags take a value only as `--flag=value` (pflag's NoOptDefVal: `--dry-run`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Takes {
    Value,
    Switch,
    Opt,
}

struct Flag {
    long: &'static str,
    short: Option<char>,
    takes: Takes,
    effect: Effect,
}

const fn f(long: &'static str, short: Option<char>, takes: Takes, effect: Effect) -> Flag {
    Flag {
        long,
        short,
        takes,
        effect,
    }
}

use Effect::{Ignored, Model, Render, State};
use Takes::{Opt, Switch, Value};

/// helm install / upgrade and helm's global flags (the union of v3.11.1, v3.17.2 and
/// v4.1.4's `--help`). Which verb a flag belongs to is helm's to say: a flag of the other
/// verb is handed on and refused by `helm template` when it does not know it either.
const HELM: &[Flag] = &[
    f("namespace", Some('n'), Value, Model),
    f("values", Some('f'), Value, Model),
    f("set", None, Value, Model),
    f("set-string", None, Value, Model),
    f("version", None, Value, Model),
    f("create-namespace", None, Switch, Model),
    f("skip-crds", None, Switch, Model),
    f("no-hooks", None, Switch, Model),
    f("disable-openapi-validation", None, Switch, Model),
    f("kube-context", None, Value, Model),
    f("kubeconfig", None, Value, Model),
    f("install", Some('i'), Switch, Model),
    f("generate-name", Some('g'), Switch, Model),
    f("take-ownership", None, Switch, Model),
    f("set-file", None, Value, Render),
    f("set-json", None, Value, Render),
    f("set-literal", None, Value, Render),
    f("repo", None, Value, Render),
    f("username", None, Value, Render),
    f("password", None, Value, Render),
    f("ca-file", None, Value, Render),
    f("cert-file", None, Value, Render),
    f("key-file", None, Value, Render),
    f("keyring", None, Value, Render),
    f("post-renderer", None, Value, Render),
    f("post-renderer-args", None, Value, Render),
    f("name-template", None, Value, Render),
    f("devel", None, Switch, Render),
    f("dependency-update", None, Switch, Render),
    f("insecure-skip-tls-verify", None, Switch, Render),
    f("plain-http", None, Switch, Render),
    f("pass-credentials", None, Switch, Render),
    f("verify", None, Switch, Render),
    f("enable-dns", None, Switch, Render),
    f("skip-schema-validation", None, Switch, Render),
    f("atomic", None, Switch, Ignored),
    f("wait", None, Opt, Ignored),
    f("wait-for-jobs", None, Switch, Ignored),
    f("timeout", None, Value, Ignored),
    f("description", None, Value, Ignored),
    f("force", None, Switch, Ignored),
    f("force-conflicts", None, Switch, Ignored),
    f("force-replace", None, Switch, Ignored),
    f("hide-notes", None, Switch, Ignored),
    f("hide-secret", None, Switch, Ignored),
    f("dry-run", None, Opt, Ignored),
    f("output", Some('o'), Value, Ignored),
    f("render-subchart-notes", None, Switch, Ignored),
    f("replace", None, Switch, Ignored),
    f("labels", Some('l'), Value, Ignored),
    f("cleanup-on-fail", None, Switch, Ignored),
    f("history-max", None, Value, Ignored),
    f("reset-values", None, Switch, Ignored),
    f("reuse-values", None, Switch, Ignored),
    f("reset-then-reuse-values", None, Switch, Ignored),
    f("rollback-on-failure", None, Switch, Ignored),
    f("server-side", None, Value, Ignored),
    f("debug", None, Switch, Ignored),
    f("burst-limit", None, Value, Ignored),
    f("qps", None, Value, Ignored),
    f("kube-apiserver", None, Value, Ignored),
    f("kube-as-group", None, Value, Ignored),
    f("kube-as-user", None, Value, Ignored),
    f("kube-ca-file", None, Value, Ignored),
    f("kube-insecure-skip-tls-verify", None, Switch, Ignored),
    f("kube-tls-server-name", None, Value, Ignored),
    f("kube-token", None, Value, Ignored),
    f("registry-config", None, Value, Ignored),
    f("repository-cache", None, Value, Ignored),
    f("repository-config", None, Value, Ignored),
    f("content-cache", None, Value, Ignored),
    f("color", None, Value, Ignored),
    f("colour", None, Value, Ignored),
];

/// helmfile's global flags (v0.166.0's `helmfile --help`).
const HELMFILE_GLOBAL: &[Flag] = &[
    f("file", Some('f'), Value, Model),
    f("environment", Some('e'), Value, Model),
    f("selector", Some('l'), Value, Model),
    f("helm-binary", Some('b'), Value, Model),
    f("kube-context", None, Value, Model),
    f("kubeconfig", None, Value, Model),
    f("namespace", Some('n'), Value, State),
    f("chart", Some('c'), Value, State),
    f("state-values-file", None, Value, State),
    f("state-values-set", None, Value, State),
    f("state-values-set-string", None, Value, State),
    f("skip-deps", None, Switch, State),
    f("allow-no-matching-release", None, Switch, State),
    f("kustomize-binary", Some('k'), Value, State),
    f("color", None, Switch, Ignored),
    f("no-color", None, Switch, Ignored),
    f("debug", None, Switch, Ignored),
    f("disable-force-update", None, Switch, Ignored),
    f("enable-live-output", None, Switch, Ignored),
    f("interactive", Some('i'), Switch, Ignored),
    f("log-level", None, Value, Ignored),
    f("quiet", Some('q'), Switch, Ignored),
    f("strip-args-values-on-exit-error", None, Switch, Ignored),
];

/// The flags of helmfile's sync / apply / diff / template (v0.166.0), by verb, as groups
/// (`helmfile VERB --help`: what they share, then what is theirs).
fn helmfile_verb_flags(verb: HelmfileCommand) -> Vec<&'static [Flag]> {
    // Every one of the four.
    const ALL: &[Flag] = &[
        f("set", None, Value, Render),
        f("values", None, Value, Render),
        f("args", None, Value, Render),
        f("post-renderer", None, Value, Render),
        f("post-renderer-args", None, Value, Render),
        f("include-needs", None, Switch, Render),
        f("include-transitive-needs", None, Switch, Render),
        f("skip-needs", None, Switch, Render),
        f("concurrency", None, Value, Ignored),
        f("validate", None, Switch, Ignored),
    ];
    // sync, apply and diff: what they pass on to helm upgrade.
    const CHANGING: &[Flag] = &[
        f("reset-values", None, Switch, Ignored),
        f("reuse-values", None, Switch, Ignored),
    ];
    // sync and apply.
    const SYNCING: &[Flag] = &[
        f("skip-crds", None, Switch, Model),
        f("cascade", None, Value, Ignored),
        f("sync-args", None, Value, Ignored),
        f("wait", None, Switch, Ignored),
        f("wait-for-jobs", None, Switch, Ignored),
    ];
    // apply and diff: helm diff's.
    const DIFFING: &[Flag] = &[
        f("no-hooks", None, Switch, Model),
        f("context", None, Value, Ignored),
        f("detailed-exitcode", None, Switch, Ignored),
        f("diff-args", None, Value, Ignored),
        f("include-tests", None, Switch, Ignored),
        f("output", None, Value, Ignored),
        f("show-secrets", None, Switch, Ignored),
        f("skip-diff-on-install", None, Switch, Ignored),
        f("strip-trailing-cr", None, Switch, Ignored),
        f("suppress", None, Value, Ignored),
        f("suppress-output-line-regex", None, Value, Ignored),
        f("suppress-secrets", None, Switch, Ignored),
    ];
    const APPLY: &[Flag] = &[
        f("skip-cleanup", None, Switch, Ignored),
        f("suppress-diff", None, Switch, Ignored),
    ];
    const TEMPLATE: &[Flag] = &[
        f("skip-tests", None, Switch, Render),
        f("show-only", None, Value, Render),
        f("kube-version", None, Value, Render),
        f("include-crds", None, Switch, Ignored),
        f("output-dir", None, Value, Ignored),
        f("output-dir-template", None, Value, Ignored),
        f("skip-cleanup", None, Switch, Ignored),
    ];
    match verb {
        HelmfileCommand::Sync => vec![ALL, CHANGING, SYNCING],
        HelmfileCommand::Apply => vec![ALL, CHANGING, SYNCING, DIFFING, APPLY],
        HelmfileCommand::Diff => vec![ALL, CHANGING, DIFFING],
        HelmfileCommand::Template => vec![ALL, TEMPLATE],
    }
}

/// Every long flag preflight reads for helm install/upgrade (for the test that holds the
/// table to the real helm's `--help`).
pub fn helm_flags() -> Vec<&'static str> {
    HELM.iter().map(|f| f.long).collect()
}

/// Every long flag preflight reads for `helmfile [global] VERB` (`None`: the global ones).
pub fn helmfile_flags(verb: Option<&str>) -> Vec<&'static str> {
    match verb.and_then(HelmfileCommand::parse) {
        Some(v) => helmfile_verb_flags(v)
            .iter()
            .flat_map(|t| t.iter())
            .map(|f| f.long)
            .collect(),
        None => HELMFILE_GLOBAL.iter().map(|f| f.long).collect(),
    }
}

/// A flag of helm install/upgrade by name (`--timeout`, `-n`): whether it takes a value
/// after it (`None`: not helm's).
pub fn helm_flag(written: &str) -> Option<bool> {
    let flag = match written.strip_prefix("--") {
        Some(long) => HELM.iter().find(|f| f.long == long),
        None => {
            let c = written.strip_prefix('-')?.chars().next()?;
            HELM.iter().find(|f| f.short == Some(c))
        }
    }?;
    Some(flag.takes == Takes::Value)
}

/// The install and the cluster an installer's command line names.
#[derive(Debug)]
pub struct Parsed {
    pub spec: InstallSpec,
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
}

/// One flag as read: its table entry, the name as written, its value.
struct Read<'t> {
    flag: &'t Flag,
    written: String,
    value: Option<String>,
}

/// Reads flags and positionals off `args` with pflag's rules, against `tables` (searched in
/// order). `--` ends the flags.
struct Reader<'a> {
    args: std::slice::Iter<'a, String>,
    dashdash: bool,
}

enum Item<'t> {
    Flag(Read<'t>),
    Positional(String),
}

impl<'a> Reader<'a> {
    fn new(args: &'a [String]) -> Self {
        Reader {
            args: args.iter(),
            dashdash: false,
        }
    }

    fn next<'t>(&mut self, tables: &[&'t [Flag]], tool: &str) -> Result<Option<Item<'t>>, String> {
        let Some(a) = self.args.next() else {
            return Ok(None);
        };
        if self.dashdash || a == "-" || !a.starts_with('-') {
            return Ok(Some(Item::Positional(a.clone())));
        }
        if a == "--" {
            self.dashdash = true;
            return self.next(tables, tool);
        }
        if a == "-h" || a == "--help" {
            return Err(format!(
                "{a}: {tool} would print its help and install nothing; leave it out of the command to check"
            ));
        }
        let find = |pred: &dyn Fn(&Flag) -> bool| tables.iter().flat_map(|t| t.iter()).find(|f| pred(f));
        let (flag, written, inline) = if let Some(long) = a.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let flag = find(&|f: &Flag| f.long == name)
                .ok_or_else(|| format!("unknown flag: --{name} (not a flag of {tool})"))?;
            (flag, format!("--{name}"), inline)
        } else {
            let mut chars = a[1..].chars();
            let c = chars.next().unwrap_or('-');
            let rest: String = chars.collect();
            let flag = find(&|f: &Flag| f.short == Some(c))
                .ok_or_else(|| format!("unknown shorthand flag: '{c}' in {a} (not a flag of {tool})"))?;
            let inline = match rest.strip_prefix('=') {
                Some(v) => Some(v.to_string()),
                None if rest.is_empty() => None,
                None if flag.takes == Takes::Value => Some(rest),
                None => {
                    return Err(format!(
                        "{a}: combined short flags are not read here; write them one by one"
                    ))
                }
            };
            (flag, format!("-{c}"), inline)
        };
        let value = match (flag.takes, inline) {
            (Takes::Value, Some(v)) => Some(v),
            (Takes::Value, None) => Some(
                self.args
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("flag needs an argument: {written}"))?,
            ),
            (Takes::Switch, Some(v)) => match v.as_str() {
                "true" | "1" | "t" | "T" | "TRUE" | "True" => None,
                "false" | "0" | "f" | "F" | "FALSE" | "False" => {
                    // `--flag=false` is the flag left out.
                    return self.next(tables, tool);
                }
                _ => {
                    return Err(format!(
                        "invalid argument \"{v}\" for \"{written}\" flag: not a boolean"
                    ))
                }
            },
            (_, inline) => inline,
        };
        Ok(Some(Item::Flag(Read { flag, written, value })))
    }
}

/// `written=value` (or the switch) as the installer wrote it, for `install.not_modeled`.
fn shown(r: &Read) -> String {
    match &r.value {
        Some(v) => format!("{}={v}", r.written),
        None => r.written.clone(),
    }
}

/// The command after `--`: `helm install|upgrade …` or `helmfile … sync|apply|diff|template …`
/// (the program may be a path: `/opt/bk/helm`).
pub fn parse(argv: &[String]) -> Result<Parsed, String> {
    let Some((program, rest)) = argv.split_first() else {
        return Err(
            "nothing after --: give the installer's command (helm install … / helmfile … sync)".into(),
        );
    };
    let name = std::path::Path::new(program)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.starts_with("helmfile") {
        return helmfile(rest);
    }
    if name.starts_with("helm") {
        let mut parsed = helm(rest)?;
        if let InstallSpec::Chart(c) = &mut parsed.spec {
            if program.contains('/') {
                c.helm_binary = Some(PathBuf::from(program));
            }
        }
        return Ok(parsed);
    }
    Err(format!(
        "after -- comes the installer's helm or helmfile command, not `{program}`"
    ))
}

/// `install|upgrade NAME CHART [flags]`, as helm takes it (and as the helm plugin passes it).
pub fn helm(args: &[String]) -> Result<Parsed, String> {
    let mut reader = Reader::new(args);
    let mut positional = Vec::new();
    let mut spec = ChartSpec {
        namespace: std::env::var("HELM_NAMESPACE")
            .ok()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".to_string()),
        ..Default::default()
    };
    let mut kubeconfig = None;
    let mut context = std::env::var("HELM_KUBECONTEXT").ok().filter(|c| !c.is_empty());
    let mut install_flag = false;
    let mut generate = false;
    while let Some(item) = reader.next(&[HELM], "helm")? {
        let r = match item {
            Item::Positional(p) => {
                positional.push(p);
                continue;
            }
            Item::Flag(r) => r,
        };
        let value = r.value.clone().unwrap_or_default();
        match (r.flag.effect, r.flag.long) {
            (Model, "namespace") => spec.namespace = value,
            (Model, "values") => spec.values.extend(value.split(',').map(PathBuf::from)),
            (Model, "set") => spec.set.push(value),
            (Model, "set-string") => spec.set_string.push(value),
            (Model, "version") => spec.version = Some(value),
            (Model, "create-namespace") => spec.create_namespace = true,
            (Model, "skip-crds") => spec.skip_crds = true,
            (Model, "no-hooks") => spec.no_hooks = true,
            (Model, "disable-openapi-validation") => spec.disable_openapi_validation = true,
            (Model, "take-ownership") => spec.take_ownership = true,
            (Model, "kube-context") => context = Some(value),
            (Model, "kubeconfig") => kubeconfig = Some(PathBuf::from(value)),
            (Model, "install") => install_flag = true,
            (Model, "generate-name") => generate = true,
            (Render, _) => {
                spec.template_args.push(r.written.clone());
                if let Some(v) = &r.value {
                    spec.template_args.push(v.clone());
                }
            }
            _ => spec.not_modeled.push(shown(&r)),
        }
    }
    let mut positional = positional.into_iter();
    let verb = positional.next().unwrap_or_default();
    spec.command = Some(match verb.as_str() {
        "install" if !install_flag => HelmCommand::Install,
        "install" => return Err("--install goes with helm upgrade, not helm install".into()),
        "upgrade" => HelmCommand::Upgrade {
            install: install_flag,
        },
        "" => return Err("the helm command names no verb: helm install or helm upgrade".into()),
        other => {
            return Err(format!(
                "helm {other}: preflight checks helm install and helm upgrade [--install]"
            ))
        }
    });
    if generate && spec.command != Some(HelmCommand::Install) {
        return Err("--generate-name goes with helm install".into());
    }
    let rest: Vec<String> = positional.collect();
    match (generate, rest.as_slice()) {
        (false, [name, chart]) => {
            spec.release = name.clone();
            spec.chart = chart.clone();
        }
        // helm's generated name is known only when it installs: a stand-in, said as such.
        (true, [chart]) => {
            spec.release = "generated-name".to_string();
            spec.chart = chart.clone();
            spec.not_modeled
                .push("--generate-name (checked as release generated-name)".into());
        }
        _ => {
            let want = if generate { "CHART" } else { "NAME CHART" };
            return Err(format!(
                "helm {verb} takes {want}, got: {}",
                if rest.is_empty() {
                    "nothing".to_string()
                } else {
                    rest.join(" ")
                }
            ));
        }
    }
    Ok(Parsed {
        spec: InstallSpec::Chart(spec),
        kubeconfig,
        context,
    })
}

/// `[global flags] sync|apply|diff|template [its flags]`, as helmfile takes it.
pub fn helmfile(args: &[String]) -> Result<Parsed, String> {
    let mut reader = Reader::new(args);
    let mut spec = HelmfileSpec::default();
    let mut file = None;
    let mut kubeconfig = None;
    let mut context = None;
    let mut verb: Option<HelmfileCommand> = None;
    loop {
        let tables: Vec<&[Flag]> = match verb {
            Some(v) => {
                let mut t = helmfile_verb_flags(v);
                t.push(HELMFILE_GLOBAL);
                t
            }
            None => vec![HELMFILE_GLOBAL],
        };
        let Some(item) = reader.next(&tables, "helmfile")? else {
            break;
        };
        let r = match item {
            Item::Positional(p) if verb.is_none() => {
                verb = Some(match p.as_str() {
                    "sync" => HelmfileCommand::Sync,
                    "apply" => HelmfileCommand::Apply,
                    "diff" => HelmfileCommand::Diff,
                    "template" => HelmfileCommand::Template,
                    other => {
                        return Err(format!(
                            "helmfile {other}: preflight checks helmfile sync, apply, diff and template"
                        ))
                    }
                });
                continue;
            }
            Item::Positional(p) => return Err(format!("helmfile takes no argument `{p}` here")),
            Item::Flag(r) => r,
        };
        let value = r.value.clone().unwrap_or_default();
        // The verbs' flags and the global ones share no name: the name alone says which.
        match (r.flag.effect, r.flag.long) {
            (Model, "file") => file = Some(PathBuf::from(value)),
            (Model, "environment") => spec.environment = Some(value),
            (Model, "selector") => spec.selectors.push(value),
            (Model, "helm-binary") => spec.helm_binary = Some(PathBuf::from(value)),
            (Model, "kube-context") => context = Some(value),
            (Model, "kubeconfig") => kubeconfig = Some(PathBuf::from(value)),
            (Model, "skip-crds") => spec.skip_crds = true,
            (Model, "no-hooks") => spec.no_hooks = true,
            (State, _) | (Render, _) => {
                let to = if r.flag.effect == State {
                    &mut spec.state_args
                } else {
                    &mut spec.template_args
                };
                to.push(r.written.clone());
                if let Some(v) = &r.value {
                    to.push(v.clone());
                }
            }
            _ => spec.not_modeled.push(shown(&r)),
        }
    }
    spec.command = verb.ok_or("the helmfile command names no verb: sync, apply, diff or template")?;
    // helmfile's own default: helmfile.yaml, helmfile.yaml.gotmpl, then helmfile.d.
    spec.file = match file {
        Some(f) => f,
        None => ["helmfile.yaml", "helmfile.yaml.gotmpl", "helmfile.d"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .ok_or("no --file given and no helmfile.yaml, helmfile.yaml.gotmpl or helmfile.d here")?,
    };
    Ok(Parsed {
        spec: InstallSpec::Helmfile(spec),
        kubeconfig,
        context,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn chart(s: &str) -> ChartSpec {
        match parse(&argv(s)).unwrap().spec {
            InstallSpec::Chart(c) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn helm_upgrade_install_with_every_form_of_flag() {
        let c = chart("/opt/bk/helm upgrade --install bk ./chart -n=blueking -fa.yaml --values b.yaml,c.yaml --set a=1 --atomic --timeout 10m --disable-openapi-validation --set-file k=f.txt --dry-run --wait=watcher --create-namespace=false");
        assert_eq!(c.command, Some(HelmCommand::Upgrade { install: true }));
        assert_eq!(
            (c.release.as_str(), c.chart.as_str(), c.namespace.as_str()),
            ("bk", "./chart", "blueking")
        );
        assert_eq!(c.values, ["a.yaml", "b.yaml", "c.yaml"].map(PathBuf::from));
        assert!(c.disable_openapi_validation && !c.create_namespace);
        assert_eq!(c.template_args, argv("--set-file k=f.txt"));
        assert_eq!(
            c.not_modeled,
            argv("--atomic --timeout=10m --dry-run --wait=watcher")
        );
        assert_eq!(c.helm_binary, Some(PathBuf::from("/opt/bk/helm")));
    }

    #[test]
    fn unknown_and_misplaced_flags_are_refused_by_name() {
        let err = |s: &str| parse(&argv(s)).unwrap_err();
        assert!(err("helm install a ./c --no-such-flag").contains("--no-such-flag"));
        assert!(err("helm install a ./c -x").contains("'x'"));
        assert!(err("helm install a ./c --timeout").contains("needs an argument: --timeout"));
        assert!(err("helm install a").contains("NAME CHART"));
        assert!(err("helm template a ./c").contains("helm template"));
        assert!(err("helm install --install a ./c").contains("upgrade"));
        assert!(err("helmfile -f h.yaml destroy").contains("destroy"));
        assert!(err("helmfile -f h.yaml --sync-args x sync").contains("--sync-args"));
        assert!(err("kubectl apply -f x").contains("kubectl"));
    }

    #[test]
    fn helmfile_global_and_verb_flags() {
        let p = parse(&argv(
            "helmfile --helm-binary /opt/bk/helm -f base.yaml.gotmpl -e prod --state-values-set k=v -l name=x --kube-context c sync --args --debug --concurrency 2 --set a=b --skip-deps",
        ))
        .unwrap();
        let InstallSpec::Helmfile(h) = p.spec else {
            panic!()
        };
        assert_eq!(h.command, HelmfileCommand::Sync);
        assert_eq!(h.file, PathBuf::from("base.yaml.gotmpl"));
        assert_eq!(h.environment.as_deref(), Some("prod"));
        assert_eq!(h.selectors, ["name=x"]);
        assert_eq!(h.helm_binary, Some(PathBuf::from("/opt/bk/helm")));
        assert_eq!(h.state_args, argv("--state-values-set k=v --skip-deps"));
        assert_eq!(h.template_args, argv("--args --debug --set a=b"));
        assert_eq!(h.not_modeled, argv("--concurrency=2"));
        assert_eq!(p.context.as_deref(), Some("c"));
    }
}
