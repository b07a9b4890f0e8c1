"""Human renderings of query answers (the JSON forms are the query data itself)."""

from __future__ import annotations

import json
from typing import Any

Data = dict[str, Any]


def _env_value(value: Data) -> str:
    if value["kind"] == "secret":
        return f"secret {value['name']}"
    if value["kind"] == "var":
        extra = f", default {value['default']!r}" if value["default"] is not None else ""
        mapped = f", mapped over {', '.join(value['mapping'])}" if value["mapping"] else ""
        return f"var {value['name']}{extra}{mapped}"
    return repr(value["value"])


def _step(step: Data) -> str:
    kind = step["kind"]
    if kind == "shell":
        return f"sh: {step['command']}"
    if kind == "deferredShell":
        return f"sh (deferred): {step['callable']} at {step['location']}"
    if kind == "function":
        prefix = "async function" if step["async"] else "function"
        return f"{prefix}: {step['callable']} at {step['location']}"
    target = f" -> {step['stdoutTo']}" if step["stdoutTo"] else ""
    return f"agent {_env_value(step['use'])}{target}: {step['prompt']!r}"


def metadata(data: Data) -> str:
    lines = [
        f"pipeline {data['pipelineName']}"
        + (f" ({data['configPath']})" if data["configPath"] else "")
    ]
    lines.append(f"tasks ({len(data['tasks'])}):")
    for task in data["tasks"]:
        desc = f"  {task['description']}" if task["description"] else ""
        lines.append(f"  {task['id']}{desc}")
        if task["dependsOn"]:
            lines.append(f"      depends on: {', '.join(task['dependsOn'])}")
        lines.extend(f"      {_step(step)}" for step in task["steps"])
    lines.append(f"jobs ({len(data['jobs'])}):")
    for job in data["jobs"]:
        triggers = f"  [triggers: {', '.join(job['triggers'])}]" if job["triggers"] else ""
        lines.append(f"  {job['id']} -> {', '.join(job['targets'])}{triggers}")
    if data["triggers"]:
        lines.append("triggers:")
        for key, trig in data["triggers"].items():
            detail = {k: v for k, v in trig.items() if k != "kind"}
            lines.append(f"  {key}: {trig['kind']} {json.dumps(detail) if detail else ''}".rstrip())
    if data["env"]:
        lines.append("env:")
        lines.extend(f"  {key}: {_env_value(value)}" for key, value in data["env"].items())
    if data["agents"]:
        lines.append("agents:")
        for key, profile in data["agents"].items():
            adapter = f"api {profile['api']}" if profile["api"] else " ".join(profile["command"])
            lines.append(f"  {key}: {adapter} (model {_env_value(profile['model'])})")
    if data["sources"]:
        lines.append("sources:")
        for key, src in data["sources"].items():
            where = src.get("path") or src.get("url")
            lines.append(f"  {key}: {src['kind']} {where}")
    return "\n".join(lines)


def task_list(data: Data) -> str:
    tasks = data["tasks"]
    if not tasks:
        return "no tasks match" if any(data["filter"].values()) else "no tasks declared"
    width = max(len(t["id"]) for t in tasks)
    lines = []
    for task in tasks:
        deps = f"  <- {', '.join(task['dependsOn'])}" if task["dependsOn"] else ""
        desc = f"  {task['description']}" if task["description"] else ""
        lines.append(f"{task['id']:<{width}}{desc}{deps}")
    lines.append(f"{data['total']} task{'s' if data['total'] != 1 else ''}")
    if data["truncated"]:
        lines.append(f"showing {len(tasks)} from offset {data['offset']}: {data['hint']}")
    return "\n".join(lines)


def _cut(data: Data, comment: str) -> list[str]:
    return [f"{comment} truncated: {data['hint']}"] if data["truncated"] else []


def graph_text(data: Data) -> str:
    lines = [f"{e['from']} -> {e['to']}" for e in data["edges"]]
    linked = {e["from"] for e in data["edges"]} | {e["to"] for e in data["edges"]}
    lines.extend(n["id"] for n in data["nodes"] if n["id"] not in linked)
    lines.extend(_cut(data, "#"))
    return "\n".join(lines) if lines else "(empty graph)"


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def graph_dot(data: Data) -> str:
    lines = [f"digraph {_quote(data['pipelineName'])} {{", "  rankdir=LR;"]
    for node in data["nodes"]:
        shape = ", shape=box" if node["kind"] == "source" else ""
        lines.append(f"  {_quote(node['id'])} [label={_quote(node['id'])}{shape}];")
    lines.extend(f"  {_quote(e['from'])} -> {_quote(e['to'])};" for e in data["edges"])
    lines.extend(_cut(data, "  //"))
    lines.append("}")
    return "\n".join(lines)


def graph_mermaid(data: Data) -> str:
    ids = {node["id"]: f"n{i}" for i, node in enumerate(data["nodes"])}
    lines = ["flowchart LR"]
    for node in data["nodes"]:
        label = node["id"].replace('"', "#quot;")
        lines.append(f'  {ids[node["id"]]}["{label}"]')
    lines.extend(f"  {ids[e['from']]} --> {ids[e['to']]}" for e in data["edges"])
    lines.extend(_cut(data, "  %%"))
    return "\n".join(lines)


def explanation(data: Data) -> str:
    task = data["task"]
    lines = [f"task {task['id']}" + (f": {task['description']}" if task["description"] else "")]
    lines.append(f"  declared at: {task['declaredAt']}")
    if task["defaultsApplied"]:
        lines.append(f"  task_defaults applied: {', '.join(task['defaultsApplied'])}")
    deps, dependents = data["dependencies"], data["dependents"]
    lines.append(f"  depends on: {', '.join(deps['direct']) or '-'}")
    if deps["transitive"] != deps["direct"]:
        lines.append(f"    (all: {', '.join(deps['transitive']) or '-'})")
    lines.append(f"  dependents: {', '.join(dependents['direct']) or '-'}")
    lines.append(f"  jobs reaching it: {', '.join(data['jobs']) or '-'}")
    lines.append(f"  inputs: {', '.join(task['inputs']) or '-'}")
    if task["resolvedInputs"] != task["inputs"]:
        lines.append(f"    resolved: {', '.join(task['resolvedInputs'])}")
    lines.append(f"  outputs: {', '.join(task['outputs']) or '-'}")
    cache = task["cache"]
    lines.append(f"  cache: {cache['ref'] if cache else 'off'}")
    retry = task["retry"]
    lines.append(
        f"  attempts: {retry['attempts']}"
        + (f" (delay {retry['delayMs']} ms)" if retry["delayMs"] else "")
    )
    lines.append(f"  timeout: {str(task['timeoutMs']) + ' ms' if task['timeoutMs'] else 'none'}")
    if task["requires"]["tools"]:
        lines.append(f"  requires tools: {', '.join(task['requires']['tools'])}")
    if task["env"]:
        lines.append("  env:")
        lines.extend(f"    {k}: {_env_value(v)}" for k, v in task["env"].items())
    lines.append("  steps:" if task["steps"] else "  steps: none")
    lines.extend(f"    {i + 1}. {_step(s)}" for i, s in enumerate(task["steps"]))
    return "\n".join(lines)


def input_diff(data: Data) -> str:
    head = f"inputs of {data['taskId']}"
    if data["baselineMissing"]:
        return f"{head}: no baseline to compare with ({data['reason']})"
    lines = [f"{head} since it last passed (entry {data['baseline']['key'][:12]}):"]
    lines.extend(f"  added    {d['path']}" for d in data["added"])
    lines.extend(f"  removed  {d['path']}" for d in data["removed"])
    lines.extend(f"  changed  {d['path']}" for d in data["changed"])
    if len(lines) == 1:
        lines.append("  nothing changed")
    lines.append(f"  ({data['unchanged']} unchanged)")
    return "\n".join(lines)


def run_list(data: Data) -> str:
    if not data["runs"]:
        return "no runs recorded yet"
    lines = []
    for run in data["runs"]:
        if run["error"]:
            lines.append(f"{run['id']}  unreadable: {run['error']}")
            continue
        counts = ", ".join(f"{n} {status}" for status, n in run["taskCounts"].items())
        cached = f", {run['cachedTasks']} cached" if run["cachedTasks"] else ""
        lines.append(f"{run['id']}  {run['jobId']}  {run['status']}  ({counts}{cached})")
    if data["nextCursor"]:
        lines.append(f"more: async-pipeline runs --cursor {data['nextCursor']}")
    return "\n".join(lines)


def run_details(data: Data) -> str:
    record = data["record"]
    lines = [
        f"run {data['runId']}: {record.get('jobId')} {record.get('status')}",
        f"  started {record.get('startedAt')}, finished {record.get('finishedAt')}",
    ]
    for task in record.get("tasks") or []:
        error = task.get("error") or {}
        cached = " (cached)" if task.get("cacheHit") else ""
        detail = f": {error.get('message')}" if error else ""
        lines.append(f"  {task.get('id')}  {task.get('status')}{cached}{detail}")
        tails = data["logs"].get(task.get("id"), {})
        if task.get("status") == "failed":
            for stream in ("stdout", "stderr"):
                tail = tails.get(stream, {}).get("text", "")
                if tail:
                    lines.append(f"    {stream}:")
                    lines.extend(f"      {line}" for line in tail.splitlines()[-20:])
    lines.extend(f"  warning: {w}" for w in record.get("warnings") or [])
    return "\n".join(lines)


def context_packs(data: Data) -> str:
    packs = data["packs"]
    head = f"run {data['runId']} ({data['jobId']}): {data['status']}"
    if not packs:
        return f"{head}; no failure context packs"
    lines = [head]
    for task_id, pack in packs.items():
        error = pack.get("error") or {}
        lines.append("")
        lines.append(f"{task_id}: {error.get('message', 'failed')} [{error.get('code', '')}]")
        reproduce = pack.get("reproduce") or {}
        env = reproduce.get("env") or []
        lines.append(f"  reproduce: {reproduce.get('command')}")
        if env:
            lines.append(f"  needs env: {', '.join(env)}")
        inputs = pack.get("inputs") or {}
        if inputs.get("baselineMissing"):
            lines.append(f"  inputs: no baseline ({inputs.get('reason')})")
        else:
            lines.extend(
                f"  {kind:<8} {entry['path']}"
                for kind in ("changed", "added", "removed")
                for entry in inputs.get(kind) or []
            )
        if pack.get("claims"):
            lines.append(f"  claims: {', '.join(pack['claims'])}")
        tail = (pack.get("logTail") or {}).get("stderr") or (pack.get("logTail") or {}).get(
            "stdout", ""
        )
        lines.extend(f"    {line}" for line in tail.splitlines()[-10:])
    return "\n".join(lines)


def doctor(report: Data) -> str:
    name = report["pipelineName"] or "(pipeline did not load)"
    lines = [f"doctor: {name}"]
    for finding in report["findings"]:
        lines.append(f"  {finding['level']:<7} {finding['message']}")
        if finding.get("location"):
            lines.append(f"          at {finding['location']}")
        if finding.get("hint"):
            lines.append(f"          hint: {finding['hint']}")
    if not report["findings"]:
        lines.append("  everything looks ready")
    errors = sum(1 for f in report["findings"] if f["level"] == "error")
    warnings = sum(1 for f in report["findings"] if f["level"] == "warning")
    lines.append(f"{errors} error(s), {warnings} warning(s)")
    return "\n".join(lines)
