"""The build's environment: the user's variables plus what the hosted platforms set.

Install and build commands see `CI=1`, percel's own `PERCEL_*` variables and the Vercel system
variables frameworks and tools read (vercel.com/docs/environment-variables/system-environment-variables),
with their framework-prefixed copies (vercel.com/docs/environment-variables/framework-environment-variables).
Nothing here comes from the runner's own environment: the sandbox builds the child's
environment from this dict alone (sandbox/base.py `base_env`).

Who wins (docs/DECISIONS.md#build-env): the user's env may override `CI` (Create React App
turns warnings into errors under CI; both platforms tell users to set it), but never the
variables that describe the deployment (commit, ref, repository, URL): a build told another
commit than the one it builds would stamp the wrong one into the site.
`VERCEL=1` is not set: SvelteKit's adapter-auto, Nitro/Nuxt and others read it as "emit
Vercel's Build Output API" instead of a static site.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

# The only platform variable a user's env may replace.
OVERRIDABLE = {"CI": "1"}
# A deployment outside a project, and a project's production-branch deployment, is a production
# build; a project's other branches build as "preview" (VERCEL_ENV's values:
# vercel.com/docs/environment-variables/system-environment-variables#VERCEL_ENV).
VERCEL_ENV = "production"
# Framework -> the prefix its bundler exposes to browser code (Vercel adds these for the
# framework preset it detected; our framework slugs are build_runner/frameworks.py's).
FRAMEWORK_PREFIXES = {
    "nextjs": "NEXT_PUBLIC_", "create-react-app": "REACT_APP_", "gatsby": "GATSBY_",
    "vue-cli": "VUE_APP_", "sveltekit": "PUBLIC_", "astro": "PUBLIC_", "vite": "VITE_",
}
# The Vercel variables copied under the framework's prefix.
PREFIXED = ("VERCEL_ENV", "VERCEL_URL", "VERCEL_GIT_COMMIT_SHA", "VERCEL_GIT_COMMIT_REF")


@dataclass(frozen=True)
class Deployment:
    """What the build may know about the deployment it builds."""
    deployment_id: str
    url: str  # the site's URL as users see it, e.g. https://<id>.<root-domain>/
    repo_url: str
    commit: str
    ref: str  # the branch or tag deployed ("" when unknown)
    target: str = VERCEL_ENV  # "production" or "preview"


def platform_env(deployment: Deployment, framework: str | None = None) -> dict[str, str]:
    """The variables that describe the deployment; they always win over the user's."""
    url = deployment.url.rstrip("/")
    env = {
        "PERCEL": "1",
        "PERCEL_DEPLOYMENT_ID": deployment.deployment_id,
        "PERCEL_URL": url,
        "PERCEL_GIT_COMMIT_SHA": deployment.commit,
        "PERCEL_GIT_COMMIT_REF": deployment.ref,
        "PERCEL_GIT_REPO_URL": deployment.repo_url,
        "VERCEL_ENV": deployment.target,
        "VERCEL_TARGET_ENV": deployment.target,
        "VERCEL_URL": urlsplit(url).netloc,  # the host (and port), without the scheme
        "VERCEL_GIT_COMMIT_SHA": deployment.commit,
        "VERCEL_GIT_COMMIT_REF": deployment.ref,
    }
    prefix = FRAMEWORK_PREFIXES.get(framework or "")
    if prefix:
        env.update({prefix + name: env[name] for name in PREFIXED})
    return env


def build_env(user_env: dict[str, str], deployment: Deployment,
              framework: str | None = None) -> dict[str, str]:
    """The whole environment of the install and build steps (before the sandbox adds PATH,
    HOME and the CA bundle)."""
    return {**OVERRIDABLE, **user_env, **platform_env(deployment, framework)}


def branch_of(head: str) -> str | None:
    """The branch a `.git/HEAD` file names ("ref: refs/heads/main" -> "main"); None when
    HEAD is detached (a tag was deployed)."""
    prefix = "ref: refs/heads/"
    if not head.startswith(prefix):
        return None
    return head.strip()[len(prefix):] or None
