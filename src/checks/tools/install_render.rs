use serde::Deserialize;

use crate::check::{
    Check, CheckDef, CheckFuture, Code, Ctx, Finding, Fix, InstallUse, Meta, Outcome, Phase, Subject,
};
use crate::install::RenderState;

const RELEASE_DOES_NOT_RENDER: Code = Code {
    code: "release-does-not-render",
    explain: "helm or helmfile refuses the release (a values file or key, a template line, kubeVersion, a chart version): helmfile sync fails the same way",
};
const RELEASE_BLOCKED: Code = Code {
    code: "release-blocked",
    explain: "the release renders, but another release of its helmfile file does not render its values: helmfile sync stops at that file before syncing this one (checked as usual, for the sync after the fix)",
};
const RELEASE_NOT_RENDERED: Code = Code {
    code: "release-not-rendered",
    explain: "preflight could not render the release (a prepare hook it would have had to run, a tool missing): not judged, so error",
};

pub static DEF: CheckDef = CheckDef {
    meta: Meta {
        id: crate::check::RENDER_CHECK,
        phase: Phase::Tools,
        title: "every release of the install renders",
        requires: &[],
        install: InstallUse::Fed,
        codes: &[RELEASE_DOES_NOT_RENDER, RELEASE_BLOCKED, RELEASE_NOT_RENDERED],
        host_network: false,
        roll_up: None,
        explain: r#"Why: before it creates anything, `helm install` (and `helmfile sync`, release by
release) renders the chart's templates with the release's values; a release that does
not render stops the install there. BlueKing CE 7 users saw (seed 004):

    helmfile -f 03-bcs.yaml.gotmpl sync
    STDERR:
    Error: template: bcs-services-stack/charts/bcs-project-manager/templates/variable-migration-job.yaml:51:20: ... error calling index: index of nil pointer

and, for a chart version the repository lacks, `Error: failed to download "名称" at
version "版本号"`. helmfile prints each such error after dozens of progress lines and a
dump of the helm arguments it ran.

What it looks at: the install (`--chart` / `--helmfile` / `install:`), rendered by the
real helm or helmfile once per run — a helmfile release by release, a few at a time, with
the target cluster's version and API groups — so one release's error is that release's:
its name, the helmfile file that declares it, and the one sentence that matters (helm's
`Error:` line with the template file:line it names, or helmfile's own error). helmfile's
lists (`in ./base.yaml: in .helmfiles[1]: in ./base-blueking.yaml.gotmpl: 3 errors:` then
`err 0: …`) are read error by error, each under the release it names, with the values file
and line (`failed to render values file environments/default/bkrepo-values.yaml.gotmpl:3:18:
… map has no entry for key "appSecret"`) and, when helmfile skipped a missing values file
that would define the key (`missingFileHandler: Warn`), that file. A release of the same
file that renders is `release-blocked` (warn): helmfile prepares a file's releases together
and syncs none of them (measured with the real `helmfile sync`: the releases of a sibling
file still install). Every other release is rendered and checked as usual; the checks that
read the install say which releases they could not look at.

The render runs no hook: the state is read with `helmfile list --skip-charts` (which fires
none), and the `prepare`/`cleanup` hooks that `helmfile template` would fire get a
stand-in that does nothing: on PATH for a command given by name, at its path in a mirror
of the tree for a relative path. A hook whose command is an absolute path or a template
cannot be stood in for: its release (a global hook: every release) is not rendered, and
this check says `error` naming the hook.
tools.helmfile-hooks checks the hooks themselves.

A release that does not render fails: helm and helmfile fail the same way. A release
preflight could not render (a hook it would have had to run, a tool missing) is `error`.

Fix: what the sentence names — the values file or key, the template line, the chart
version; helm's own `--debug` shows the rendered text."#,
    },
};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct InstallRender {}

impl Check for InstallRender {
    fn run<'a>(&'a self, ctx: &'a Ctx) -> CheckFuture<'a> {
        Box::pin(async move {
            let install = match ctx.install() {
                None => return Outcome::skip("no install given (--chart / --helmfile / install:)"),
                Some(Err(e)) => return Outcome::error(format!("the install could not be rendered: {e}")),
                Some(Ok(i)) => i,
            };
            let (mut failed, mut not_rendered, mut blocked) = (Vec::new(), Vec::new(), Vec::new());
            for r in &install.releases {
                let from = r.file.as_ref().map(|f| format!(" ({f})")).unwrap_or_default();
                let subject = Subject::release(r.name.as_str(), Some(r.namespace.as_str()));
                match &r.render {
                    RenderState::Rendered if !r.blocked_by.is_empty() => blocked.push(Finding::warn(
                        &RELEASE_BLOCKED,
                        subject,
                        format!(
                            "release {}{from}: renders, but helmfile sync stops before it: the values of {} in the same file do not render",
                            r.name,
                            r.blocked_by.join(", ")
                        ),
                    )),
                    RenderState::Rendered => {}
                    RenderState::Failed(e) => failed.push(Finding::fail(
                        &RELEASE_DOES_NOT_RENDER,
                        subject,
                        format!("release {}{from}: {e}", r.name),
                    )),
                    RenderState::NotRendered(e) => not_rendered.push(Finding::error(
                        &RELEASE_NOT_RENDERED,
                        subject,
                        format!("release {}{from}: not rendered: {e}", r.name),
                    )),
                }
            }
            let rendered = install.releases.len() - failed.len() - not_rendered.len();
            let summary = format!(
                "{rendered} of {} release(s) rendered, {} object(s)",
                install.releases.len(),
                install.objects.len()
            );
            if failed.is_empty() && not_rendered.is_empty() {
                return Outcome::pass(summary);
            }
            if failed.is_empty() {
                return Outcome::found(not_rendered, summary);
            }
            let mut found = failed;
            found.extend(blocked);
            found.extend(not_rendered);
            Outcome::found(found, summary).with_fix(Fix::manual(
                "correct what helm or helmfile names (values file or key, template line, chart version); `helm template --debug` shows the rendered text",
                Vec::new(),
            ))
        })
    }
}
