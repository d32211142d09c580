#!/usr/bin/env python3
"""Post or update terrace's plan note(s) on a GitLab merge request.

The GitLab counterpart of pr-comment.py. Reads the markdown parts written by
`terrace plan --markdown-dir DIR` (or `terrace show PLANFILE --markdown-dir DIR`):
DIR/part-001.md, part-002.md, ... Each part starts with the hidden marker
`<!-- terrace-plan: PROJECT -->`. The script finds the merge request's notes whose first
line is that marker, updates them in place (oldest first), posts the parts that have no
note yet, and deletes notes left over from a longer plan. Notes of other projects,
system notes and everyone else's notes are never touched. An unchanged part is not
rewritten, so nobody is notified twice for the same plan.

Standard library only. Every request has a timeout. The token (a project or group
access token with the `api` scope; CI_JOB_TOKEN cannot write notes) is read from the
GITLAB_TOKEN environment variable and never printed.

Usage:
    mr-note.py --project ID_OR_PATH --mr IID --parts-dir DIR [--api URL]
"""

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

TIMEOUT_SECONDS = 30
MARKER = re.compile(r"^<!-- terrace-plan: [^\n]* -->$")


class ApiError(Exception):
    """A request the API refused; the message names the request, never the token."""


class GitLab:
    def __init__(self, api, token):
        self.api = api.rstrip("/")
        self.token = token

    def request(self, method, path, body=None):
        url = path if path.startswith("http") else self.api + path
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("PRIVATE-TOKEN", self.token)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT_SECONDS) as resp:
                raw = resp.read()
                return (json.loads(raw) if raw else None), resp.headers.get("X-Next-Page", "")
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")[:500]
            raise ApiError(f"{method} {urllib.parse.urlsplit(url).path}: HTTP {e.code}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as e:
            raise ApiError(f"{method} {urllib.parse.urlsplit(url).path}: {e}") from None

    def notes(self, base):
        """Every note of the merge request, oldest first, following pagination."""
        out = []
        page = "1"
        while page:
            query = urllib.parse.urlencode(
                {"per_page": 100, "page": page, "sort": "asc", "order_by": "created_at"}
            )
            batch, page = self.request("GET", f"{base}/notes?{query}")
            out.extend(batch)
        return out


def read_parts(parts_dir):
    names = sorted(n for n in os.listdir(parts_dir) if re.fullmatch(r"part-\d+\.md", n))
    if not names:
        raise SystemExit(f"error: no part-*.md files in {parts_dir}")
    parts = []
    for name in names:
        with open(os.path.join(parts_dir, name), encoding="utf-8") as f:
            parts.append(f.read().rstrip("\n"))
    marker = parts[0].split("\n", 1)[0]
    if not MARKER.match(marker):
        raise SystemExit(f"error: {names[0]} does not start with a terrace-plan marker")
    for name, part in zip(names, parts):
        if part.split("\n", 1)[0] != marker:
            raise SystemExit(f"error: {name} is not part of the same plan as {names[0]}")
    return marker, parts


def sync(gl, project, mr, marker, parts):
    """Makes the merge request's marked notes equal `parts`. Returns what it did."""
    base = f"/projects/{urllib.parse.quote(str(project), safe='')}/merge_requests/{mr}"
    ours = [
        n
        for n in gl.notes(base)
        if not n.get("system") and (n.get("body") or "").split("\n", 1)[0] == marker
    ]
    ours.sort(key=lambda n: n["id"])
    done = {"created": 0, "updated": 0, "unchanged": 0, "deleted": 0}
    for i, body in enumerate(parts):
        if i < len(ours):
            if ours[i].get("body") == body:
                done["unchanged"] += 1
                continue
            gl.request("PUT", f"{base}/notes/{ours[i]['id']}", {"body": body})
            done["updated"] += 1
        else:
            gl.request("POST", f"{base}/notes", {"body": body})
            done["created"] += 1
    for extra in ours[len(parts):]:
        gl.request("DELETE", f"{base}/notes/{extra['id']}")
        done["deleted"] += 1
    return done


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--project",
        default=os.environ.get("CI_PROJECT_ID"),
        help="project ID or path (group/name) [default: $CI_PROJECT_ID]",
    )
    ap.add_argument(
        "--mr",
        default=os.environ.get("CI_MERGE_REQUEST_IID"),
        type=int,
        help="merge request IID [default: $CI_MERGE_REQUEST_IID]",
    )
    ap.add_argument("--parts-dir", required=True, help="directory of part-*.md files")
    ap.add_argument(
        "--api",
        default=os.environ.get("CI_API_V4_URL", "https://gitlab.com/api/v4"),
        help="API base URL [default: $CI_API_V4_URL or https://gitlab.com/api/v4]",
    )
    args = ap.parse_args()
    if not args.project or not re.fullmatch(r"[0-9]+|[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)+", args.project):
        raise SystemExit(f"error: --project must be a numeric ID or GROUP/NAME, not {args.project!r}")
    if not args.mr:
        raise SystemExit("error: --mr (or CI_MERGE_REQUEST_IID) is required")
    token = os.environ.get("GITLAB_TOKEN")
    if not token:
        raise SystemExit("error: GITLAB_TOKEN is not set")
    marker, parts = read_parts(args.parts_dir)
    try:
        done = sync(GitLab(args.api, token), args.project, args.mr, marker, parts)
    except ApiError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(
        f"{marker[5:-4]}: {len(parts)} part(s): {done['created']} posted, "
        f"{done['updated']} updated, {done['unchanged']} unchanged, {done['deleted']} deleted"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
