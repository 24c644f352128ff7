#!/usr/bin/env python3
"""Distinct failures from schemathesis NDJSON reports (scripts/schemathesis.sh writes them).

    scripts/schemathesis-failures.py REPORT.ndjson [LABEL]

Groups every failed check by (operation, check, status, problem code or failure title) and
prints, per group: how many test cases hit it, the failure message, and the smallest
request that did, as a curl line. The credential is shown as $TOKEN (schemathesis filters
it out of its reports); a request sent without one shows no Authorization header.
Exit 0 always: schemathesis' own exit code says pass or fail.
"""
import base64
import collections
import json
import shlex
import sys


def decode(blob):
    if not blob:
        return b""
    if "$base64" in blob:
        return base64.b64decode(blob["$base64"])
    return blob.get("string", "").encode()


def curl(request):
    parts = ["curl", "-sS", "-X", request["method"]]
    for name, values in sorted(request.get("headers", {}).items()):
        if name.lower() in ("user-agent", "x-schemathesis-testcaseid", "accept", "accept-encoding",
                            "connection", "content-length"):
            continue
        for v in values:
            if name.lower() == "authorization":
                v = "Bearer $TOKEN"
                parts += ["-H", f'"{name}: {v}"']
                continue
            parts += ["-H", shlex.quote(f"{name}: {v}")]
    body = decode(request.get("body"))
    if body:
        try:
            text = body.decode()
            parts += ["--data-binary", shlex.quote(text)]
        except UnicodeDecodeError:
            parts += ["--data-binary", "$'" + "".join(f"\\x{b:02x}" for b in body) + "'"]
    parts.append(shlex.quote(request["uri"]))
    return " ".join(parts)


def main():
    path = sys.argv[1]
    label = sys.argv[2] if len(sys.argv) > 2 else path
    groups = collections.OrderedDict()
    per_check = collections.Counter()
    operations = set()
    for line in open(path, encoding="utf-8"):
        event = json.loads(line)
        finished = event.get("ScenarioFinished")
        if not finished:
            continue
        recorder = finished["recorder"]
        operations.add(recorder["label"])
        for case_id, checks in recorder.get("checks", {}).items():
            interaction = recorder.get("interactions", {}).get(case_id)
            case = recorder.get("cases", {}).get(case_id, {}).get("value", {})
            for check in checks:
                if check.get("status") != "failure":
                    continue
                failure = check["failure_info"]["failure"]
                op = failure.get("operation") or recorder["label"]
                status = code = None
                body = b""
                if interaction and interaction.get("response"):
                    status = interaction["response"]["status_code"]
                    body = decode(interaction["response"].get("content"))
                    try:
                        code = json.loads(body).get("code")
                    except (ValueError, AttributeError):
                        code = None
                key = (op, failure.get("code", check["name"]), status,
                       code or failure.get("title"))
                per_check[f'{failure.get("code")} {failure.get("title")}'] += 1
                request = interaction["request"] if interaction else None
                size = len(request["uri"]) + len(decode(request.get("body"))) if request else 1 << 30
                group = groups.setdefault(key, {"count": 0, "size": None})
                group["count"] += 1
                if group["size"] is None or size < group["size"]:
                    group.update(size=size, failure=failure, request=request, body=body,
                                 phase=finished.get("phase"), case=case)
    print(f"== {label}: {len(operations)} operations with scenarios, "
          f"{sum(per_check.values())} failed checks, {len(groups)} distinct")
    for name, n in per_check.most_common():
        print(f"   {n:5d}  {name}")
    for (op, check, status, what), g in groups.items():
        f = g["failure"]
        print(f"\n-- {op} | {check} {f.get('title')} | status {status} | {what} | x{g['count']}"
              f" | phase {g['phase']}")
        print("   " + f.get("message", "").replace("\n", "\n   ")[:1500])
        if g["request"]:
            print("   " + curl(g["request"]))
        if g["body"]:
            print("   -> " + g["body"][:400].decode(errors="replace").replace("\n", "\\n"))


if __name__ == "__main__":
    main()
