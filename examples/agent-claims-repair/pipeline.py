"""Propose/dispose: an agent proposes a fix from declared inputs, a deterministic task decides.

    async-pipeline run repair      # mock agent by default; ASYNC_AGENT=claude for a real one

The agent never edits src/: it writes its proposal to proposals/pricing.py (``stdout_to``).
``verify`` copies the project to a scratch directory, puts the proposal in place, and runs
the claims' tests there. Only a proposal that passes is worth a human's review:

    cp proposals/pricing.py src/pricing.py
"""

from async_pipeline import agent, define_pipeline, env, job, sh, task, trigger

PROMPT = """\
The claims in tests/claims.json are checked by tests/check.py against src/pricing.py.
Some fail. Reply with the complete corrected contents of src/pricing.py and nothing else:
no explanations, no code fences.
"""

pipeline = define_pipeline(
    name="agent-claims-repair",
    agents={
        "mock": {"command": ["python3", "scripts/mock_agent.py"], "model": "mock-repair-1"},
        "claude": {
            "command": ["claude", "-p"],
            "model": env.var("AGENT_MODEL", default="claude-sonnet-4-6"),
        },
    },
    triggers={"push": trigger.github(events=["push"], branches=["main"])},
    tasks={
        "claims": task(
            sh("python3 tests/check.py src"),
            description="Check the claims against the current sources (expected to fail)",
            inputs=["src/**", "tests/**"],
        ),
        "propose": task(
            agent(
                use=env.var("ASYNC_AGENT", default="mock"),
                prompt=PROMPT,
                stdout_to="proposals/pricing.py",
            ),
            description="Ask the agent for a corrected src/pricing.py",
            inputs=["src/**", "tests/**"],
            outputs=["proposals/pricing.py"],
            env={"MOCK_AGENT_MODE": env.var("MOCK_AGENT_MODE", default="fix")},
            cache=True,
            timeout="5m",
        ),
        "verify": task(
            sh("python3 scripts/verify_proposal.py proposals/pricing.py"),
            description="Accept the proposal only if every claim passes with it in place",
            depends_on=["propose"],
            inputs=["proposals/pricing.py", "src/**", "tests/**", "scripts/verify_proposal.py"],
            cache=True,
        ),
    },
    jobs={
        "repair": job(target="verify", description="Propose a fix and verify it"),
        "check": job(target="claims", trigger="push", description="Check the claims as they are"),
    },
)
