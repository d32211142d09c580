#!/usr/bin/env python3
"""Tests of pr-comment.py against a local fake of GitHub's issue-comment API.

Run: python3 examples/ci/test_pr_comment.py  (cargo test runs it too, from
tests/ci_example.rs, with parts rendered by the real terrace binary in PARTS_DIR).
"""

import http.server
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "pr-comment.py")
TOKEN = "ghs_fake-token-never-printed"
REPO = "acme/infra"
PR = 7


class FakeGitHub(http.server.ThreadingHTTPServer):
    """Comments in memory, pages of `per_page`, and a log of every write."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.comments = []  # dicts: id, body, issue
        self.next_id = 1000
        self.writes = []
        self.fail_writes = False
        self.lock = threading.Lock()

    def add(self, body, issue=PR):
        with self.lock:
            self.next_id += 1
            self.comments.append({"id": self.next_id, "body": body, "issue": issue})
            return self.next_id

    def bodies(self, issue=PR):
        return [c["body"] for c in sorted(self.comments, key=lambda c: c["id"]) if c["issue"] == issue]

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, code, body=None, headers=()):
        raw = b"" if body is None else json.dumps(body).encode()
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def authorized(self):
        if self.headers.get("Authorization") != "Bearer " + TOKEN:
            self.reply(401, {"message": "Bad credentials"})
            return False
        return True

    def body(self):
        n = int(self.headers.get("Content-Length", 0))
        return json.loads(self.rfile.read(n))

    def do_GET(self):
        if not self.authorized():
            return
        url = urllib.parse.urlsplit(self.path)
        m = re.fullmatch(r"/repos/acme/infra/issues/(\d+)/comments", url.path)
        if not m:
            return self.reply(404, {"message": "Not Found"})
        q = urllib.parse.parse_qs(url.query)
        per_page = int(q.get("per_page", ["30"])[0])
        # The fake serves small pages so that pagination is exercised.
        per_page = min(per_page, 5)
        page = int(q.get("page", ["1"])[0])
        s = self.server
        with s.lock:
            mine = sorted((c for c in s.comments if c["issue"] == int(m.group(1))), key=lambda c: c["id"])
        chunk = mine[(page - 1) * per_page : page * per_page]
        headers = []
        if page * per_page < len(mine):
            nxt = f"{s.url}{url.path}?per_page={per_page}&page={page + 1}"
            headers.append(("Link", f'<{nxt}>; rel="next"'))
        self.reply(200, [{"id": c["id"], "body": c["body"]} for c in chunk], headers)

    def write(self, method):
        if not self.authorized():
            return
        s = self.server
        if s.fail_writes:
            return self.reply(403, {"message": "Resource not accessible by integration"})
        path = urllib.parse.urlsplit(self.path).path
        post = re.fullmatch(r"/repos/acme/infra/issues/(\d+)/comments", path)
        one = re.fullmatch(r"/repos/acme/infra/issues/comments/(\d+)", path)
        with s.lock:
            if method == "POST" and post:
                s.next_id += 1
                c = {"id": s.next_id, "body": self.body()["body"], "issue": int(post.group(1))}
                s.comments.append(c)
                s.writes.append(("POST", c["id"]))
                return self.reply(201, {"id": c["id"], "body": c["body"]})
            if one:
                cid = int(one.group(1))
                found = [c for c in s.comments if c["id"] == cid]
                if not found:
                    return self.reply(404, {"message": "Not Found"})
                if method == "PATCH":
                    found[0]["body"] = self.body()["body"]
                    s.writes.append(("PATCH", cid))
                    return self.reply(200, {"id": cid, "body": found[0]["body"]})
                if method == "DELETE":
                    s.comments.remove(found[0])
                    s.writes.append(("DELETE", cid))
                    return self.reply(204)
        self.reply(404, {"message": "Not Found"})

    def do_POST(self):
        self.write("POST")

    def do_PATCH(self):
        self.write("PATCH")

    def do_DELETE(self):
        self.write("DELETE")


def write_parts(directory, parts):
    for name in os.listdir(directory):
        os.remove(os.path.join(directory, name))
    for i, p in enumerate(parts, 1):
        with open(os.path.join(directory, f"part-{i:03}.md"), "w", encoding="utf-8") as f:
            f.write(p + "\n")


def plan_parts(project, n, tag=""):
    marker = f"<!-- terrace-plan: {project} -->"
    if n == 1:
        return [f"{marker}\n**Plan: 1 to add, 0 to change, 0 to destroy.**{tag}"]
    return [f"{marker}\n**terrace plan, part {i} of {n}**\n\nbody {i}{tag}" for i in range(1, n + 1)]


class PrCommentTest(unittest.TestCase):
    def setUp(self):
        self.gh = FakeGitHub()
        threading.Thread(target=self.gh.serve_forever, daemon=True).start()
        self.dir = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.gh.shutdown()
        self.gh.server_close()
        self.dir.cleanup()

    def run_script(self, parts=None, token=TOKEN):
        if parts is not None:
            write_parts(self.dir.name, parts)
        env = dict(os.environ, GITHUB_TOKEN=token)
        out = subprocess.run(
            [sys.executable, SCRIPT, "--repo", REPO, "--pr", str(PR),
             "--parts-dir", self.dir.name, "--api", self.gh.url],
            env=env, capture_output=True, text=True, timeout=60,
        )
        self.assertNotIn(TOKEN, out.stdout + out.stderr)
        return out

    def test_posts_then_updates_in_place_then_shrinks(self):
        self.gh.add("LGTM, but see the plan")
        self.gh.add("<!-- terrace-plan: other -->\nanother project's plan")
        out = self.run_script(plan_parts("shop", 3))
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("3 posted, 0 updated, 0 unchanged, 0 deleted", out.stdout)
        self.assertEqual(self.gh.bodies()[2:], plan_parts("shop", 3))

        # The same plan again: nothing is rewritten, nobody is notified.
        self.gh.writes.clear()
        out = self.run_script()
        self.assertIn("0 posted, 0 updated, 3 unchanged, 0 deleted", out.stdout)
        self.assertEqual(self.gh.writes, [])

        # A new plan of the same project replaces the old one in place.
        ids_before = [c["id"] for c in self.gh.comments]
        out = self.run_script(plan_parts("shop", 3, " (new)"))
        self.assertIn("0 posted, 3 updated", out.stdout)
        self.assertEqual([c["id"] for c in self.gh.comments], ids_before)
        self.assertEqual(self.gh.bodies()[2:], plan_parts("shop", 3, " (new)"))

        # A shorter plan: the surplus parts go, everyone else's comments stay.
        out = self.run_script(plan_parts("shop", 1))
        self.assertIn("0 posted, 1 updated, 0 unchanged, 2 deleted", out.stdout)
        self.assertEqual(
            self.gh.bodies(),
            ["LGTM, but see the plan", "<!-- terrace-plan: other -->\nanother project's plan"]
            + plan_parts("shop", 1),
        )

    def test_finds_its_comment_beyond_the_first_page(self):
        for i in range(12):
            self.gh.add(f"chatter {i}")
        self.gh.add(plan_parts("shop", 1)[0])
        self.gh.add("> <!-- terrace-plan: shop -->\n> quoted by someone: not ours")
        out = self.run_script(plan_parts("shop", 1, " (new)"))
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("0 posted, 1 updated", out.stdout)
        self.assertEqual(len(self.gh.bodies()), 14)
        self.assertEqual(self.gh.bodies()[12], plan_parts("shop", 1, " (new)")[0])

    def test_api_errors_fail_the_step_without_printing_the_token(self):
        self.gh.fail_writes = True
        out = self.run_script(plan_parts("shop", 2))
        self.assertEqual(out.returncode, 1)
        self.assertIn("HTTP 403", out.stderr)
        out = self.run_script(token="wrong-token")
        self.assertEqual(out.returncode, 1)
        self.assertIn("HTTP 401", out.stderr)
        self.assertNotIn("wrong-token", out.stdout + out.stderr)

    def test_refuses_parts_that_are_not_a_terrace_plan(self):
        out = self.run_script(["no marker here"])
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("does not start with a terrace-plan marker", out.stderr)
        self.assertEqual(self.gh.writes, [])

    @unittest.skipUnless(os.environ.get("PARTS_DIR"), "PARTS_DIR: parts rendered by terrace")
    def test_posts_the_parts_terrace_rendered(self):
        src = os.environ["PARTS_DIR"]
        names = sorted(os.listdir(src))
        parts = []
        for n in names:
            with open(os.path.join(src, n), encoding="utf-8") as f:
                parts.append(f.read().rstrip("\n"))
        self.assertGreater(len(parts), 1, "the rendered plan should need several parts")
        out = self.run_script(parts)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(self.gh.bodies(), parts)
        for body in self.gh.bodies():
            self.assertLess(len(body), 65536)
        # Rendered again (same plan, same bytes): nothing to do.
        out = self.run_script()
        self.assertIn(f"0 posted, 0 updated, {len(parts)} unchanged, 0 deleted", out.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
