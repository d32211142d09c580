#!/usr/bin/env python3
"""Post or update terrace's plan comment(s) on a GitHub pull request.

Reads the markdown parts written by `terrace plan --markdown-dir DIR` (or
`terrace show PLANFILE --markdown-dir DIR`): DIR/part-001.md, part-002.md, ...
Each part starts with the hidden marker `<!-- terrace-plan: PROJECT -->`. The script
finds the pull request's comments whose first line is that marker, updates them in
place (in order of creation), posts the parts that have no comment yet, and deletes
comments left over from a longer plan. Comments of other projects, and everyone else's
comments, are never touched. An unchanged part is not rewritten, so nobody is notified
twice for the same plan.

Standard library only. Every request has a timeout. The token is read from the
GITHUB_TOKEN environment variable and never printed.

Usage:
    pr-comment.py --repo OWNER/NAME --pr NUMBER --parts-dir DIR [--api URL]
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


class GitHub:
    def __init__(self, api, token):
        self.api = api.rstrip("/")
        self.token = token

    def request(self, method, path, body=None):
        url = path if path.startswith("http") else self.api + path
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Accept", "application/vnd.github+json")
        req.add_header("X-GitHub-Api-Version", "2022-11-28")
        req.add_header("Authorization", "Bearer " + self.token)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT_SECONDS) as resp:
                raw = resp.read()
                return (json.loads(raw) if raw else None), resp.headers.get("Link", "")
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")[:500]
            raise ApiError(f"{method} {urllib.parse.urlsplit(url).path}: HTTP {e.code}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as e:
            raise ApiError(f"{method} {urllib.parse.urlsplit(url).path}: {e}") from None

    def comments(self, repo, pr):
        """Every comment of the pull request, following pagination."""
        url = f"/repos/{repo}/issues/{pr}/comments?per_page=100"
        out = []
        while url:
            page, link = self.request("GET", url)
            out.extend(page)
            url = next_link(link)
        return out


def next_link(link_header):
    for part in link_header.split(","):
        m = re.match(r'\s*<([^>]+)>;\s*rel="next"', part)
        if m:
            return m.group(1)
    return None


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


def sync(gh, repo, pr, marker, parts):
    """Makes the pull request's marked comments equal `parts`. Returns what it did."""
    ours = [c for c in gh.comments(repo, pr) if (c.get("body") or "").split("\n", 1)[0] == marker]
    ours.sort(key=lambda c: c["id"])
    done = {"created": 0, "updated": 0, "unchanged": 0, "deleted": 0}
    for i, body in enumerate(parts):
        if i < len(ours):
            if ours[i].get("body") == body:
                done["unchanged"] += 1
                continue
            gh.request("PATCH", f"/repos/{repo}/issues/comments/{ours[i]['id']}", {"body": body})
            done["updated"] += 1
        else:
            gh.request("POST", f"/repos/{repo}/issues/{pr}/comments", {"body": body})
            done["created"] += 1
    for extra in ours[len(parts):]:
        gh.request("DELETE", f"/repos/{repo}/issues/comments/{extra['id']}")
        done["deleted"] += 1
    return done


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repo", required=True, help="OWNER/NAME")
    ap.add_argument("--pr", required=True, type=int, help="pull request number")
    ap.add_argument("--parts-dir", required=True, help="directory of part-*.md files")
    ap.add_argument(
        "--api",
        default=os.environ.get("GITHUB_API_URL", "https://api.github.com"),
        help="API base URL [default: $GITHUB_API_URL or https://api.github.com]",
    )
    args = ap.parse_args()
    if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", args.repo):
        raise SystemExit(f"error: --repo must be OWNER/NAME, not {args.repo!r}")
    token = os.environ.get("GITHUB_TOKEN")
    if not token:
        raise SystemExit("error: GITHUB_TOKEN is not set")
    marker, parts = read_parts(args.parts_dir)
    try:
        done = sync(GitHub(args.api, token), args.repo, args.pr, marker, parts)
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
