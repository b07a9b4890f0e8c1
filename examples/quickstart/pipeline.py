"""A small pipeline: check the code, test it, build an artifact, and verify the artifact.

Try it from this directory:

    async-pipeline list
    async-pipeline graph --format mermaid
    async-pipeline explain build
    async-pipeline metadata --format json
"""

from async_pipeline import cache, define_pipeline, env, job, sh, task, trigger

pipeline = define_pipeline(
    name="quickstart",
    env={"GREETING_STYLE": env.var("GREETING_STYLE", default="plain")},
    named_inputs={"sources": ["src/**/*.py"]},
    task_defaults={"check": {"timeout": "1m"}},
    triggers={
        "push": trigger.github(events=["push", "pull_request"], branches=["main"]),
        "manual": trigger.manual(),
    },
    tasks={
        "lint": task(
            sh("python3 -m py_compile src/greet.py"),
            description="Byte-compile the sources",
            inputs=["sources"],
        ),
        "test": task(
            sh("python3 src/greet.py --self-test"),
            description="Run the self-test",
            depends_on=["lint"],
            inputs=["sources"],
            retry=2,
        ),
        "build": task(
            cache.use("file:local"),
            sh("mkdir -p dist && python3 src/greet.py > dist/greeting.txt"),
            description="Write dist/greeting.txt",
            depends_on=["test"],
            inputs=["sources"],
            outputs=["dist/greeting.txt"],
        ),
        "dist": {
            "check": task(
                sh("grep -q 'Hello' dist/greeting.txt"),
                description="Verify the built artifact",
                depends_on=["build"],
                inputs=["dist/greeting.txt"],
            ),
        },
    },
    jobs={
        "verify": job(
            target="dist.check", trigger=["push", "manual"], description="Lint, test, build, check"
        ),
    },
)
