#!/usr/bin/env python3
"""Tests of mr-note.py against a local fake of GitLab's merge-request notes API.

Run: python3 examples/ci/test_mr_note.py  (cargo test runs it too, from
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
SCRIPT = os.path.join(HERE, "mr-note.py")
TOKEN = "glpat-fake-token-never-printed"
PROJECT = "acme/infra"
MR = 7
NOTES = re.compile(r"/api/v4/projects/acme%2Finfra/merge_requests/(\d+)/notes")
ONE = re.compile(r"/api/v4/projects/acme%2Finfra/merge_requests/(\d+)/notes/(\d+)")


class FakeGitLab(http.server.ThreadingHTTPServer):
    """Notes in memory, pages of at most 5 (X-Next-Page), and a log of every write."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.notes = []  # dicts: id, body, mr, system
        self.next_id = 5000
        self.writes = []
        self.fail_writes = False
        self.lock = threading.Lock()

    def add(self, body, mr=MR, system=False):
        with self.lock:
            self.next_id += 1
            self.notes.append({"id": self.next_id, "body": body, "mr": mr, "system": system})
            return self.next_id

    def bodies(self, mr=MR):
        return [n["body"] for n in sorted(self.notes, key=lambda n: n["id"]) if n["mr"] == mr]

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/api/v4"


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
        if self.headers.get("PRIVATE-TOKEN") != TOKEN:
            self.reply(401, {"message": "401 Unauthorized"})
            return False
        return True

    def body(self):
        n = int(self.headers.get("Content-Length", 0))
        return json.loads(self.rfile.read(n))

    def do_GET(self):
        if not self.authorized():
            return
        # The raw path: the project path must arrive URL-encoded, as GitLab requires.
        url = urllib.parse.urlsplit(self.path)
        m = NOTES.fullmatch(url.path)
        if not m:
            return self.reply(404, {"message": "404 Not Found"})
        q = urllib.parse.parse_qs(url.query)
        per_page = min(int(q.get("per_page", ["20"])[0]), 5)
        page = int(q.get("page", ["1"])[0])
        s = self.server
        with s.lock:
            mine = [n for n in s.notes if n["mr"] == int(m.group(1))]
        # GitLab's default order is newest first; the script asks for oldest first.
        mine.sort(key=lambda n: n["id"], reverse=q.get("sort") != ["asc"])
        chunk = mine[(page - 1) * per_page : page * per_page]
        headers = [("X-Next-Page", str(page + 1) if page * per_page < len(mine) else "")]
        self.reply(200, [{"id": n["id"], "body": n["body"], "system": n["system"]} for n in chunk], headers)

    def write(self, method):
        if not self.authorized():
            return
        s = self.server
        if s.fail_writes:
            return self.reply(403, {"message": "403 Forbidden"})
        path = urllib.parse.urlsplit(self.path).path
        post = NOTES.fullmatch(path)
        one = ONE.fullmatch(path)
        with s.lock:
            if method == "POST" and post:
                s.next_id += 1
                n = {"id": s.next_id, "body": self.body()["body"], "mr": int(post.group(1)), "system": False}
                s.notes.append(n)
                s.writes.append(("POST", n["id"]))
                return self.reply(201, {"id": n["id"], "body": n["body"]})
            if one:
                nid = int(one.group(2))
                found = [n for n in s.notes if n["id"] == nid and n["mr"] == int(one.group(1))]
                if not found:
                    return self.reply(404, {"message": "404 Not found"})
                if found[0]["system"]:
                    return self.reply(403, {"message": "system notes cannot be changed"})
                if method == "PUT":
                    found[0]["body"] = self.body()["body"]
                    s.writes.append(("PUT", nid))
                    return self.reply(200, {"id": nid, "body": found[0]["body"]})
                if method == "DELETE":
                    s.notes.remove(found[0])
                    s.writes.append(("DELETE", nid))
                    return self.reply(204)
        self.reply(404, {"message": "404 Not Found"})

    def do_POST(self):
        self.write("POST")

    def do_PUT(self):
        self.write("PUT")

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


class MrNoteTest(unittest.TestCase):
    def setUp(self):
        self.gl = FakeGitLab()
        threading.Thread(target=self.gl.serve_forever, daemon=True).start()
        self.dir = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.gl.shutdown()
        self.gl.server_close()
        self.dir.cleanup()

    def run_script(self, parts=None, token=TOKEN):
        if parts is not None:
            write_parts(self.dir.name, parts)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CI_")}
        env["GITLAB_TOKEN"] = token
        out = subprocess.run(
            [sys.executable, SCRIPT, "--project", PROJECT, "--mr", str(MR),
             "--parts-dir", self.dir.name, "--api", self.gl.url],
            env=env, capture_output=True, text=True, timeout=60,
        )
        self.assertNotIn(TOKEN, out.stdout + out.stderr)
        return out

    def test_posts_then_updates_in_place_then_shrinks(self):
        self.gl.add("LGTM, but see the plan")
        self.gl.add("<!-- terrace-plan: other -->\nanother project's plan")
        out = self.run_script(plan_parts("shop", 3))
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("3 posted, 0 updated, 0 unchanged, 0 deleted", out.stdout)
        self.assertEqual(self.gl.bodies()[2:], plan_parts("shop", 3))

        # The same plan again: nothing is rewritten, nobody is notified.
        self.gl.writes.clear()
        out = self.run_script()
        self.assertIn("0 posted, 0 updated, 3 unchanged, 0 deleted", out.stdout)
        self.assertEqual(self.gl.writes, [])

        # A new plan of the same project replaces the old one in place.
        ids_before = [n["id"] for n in self.gl.notes]
        out = self.run_script(plan_parts("shop", 3, " (new)"))
        self.assertIn("0 posted, 3 updated", out.stdout)
        self.assertEqual([n["id"] for n in self.gl.notes], ids_before)
        self.assertEqual(self.gl.bodies()[2:], plan_parts("shop", 3, " (new)"))

        # A shorter plan: the surplus parts go, everyone else's notes stay.
        out = self.run_script(plan_parts("shop", 1))
        self.assertIn("0 posted, 1 updated, 0 unchanged, 2 deleted", out.stdout)
        self.assertEqual(
            self.gl.bodies(),
            ["LGTM, but see the plan", "<!-- terrace-plan: other -->\nanother project's plan"]
            + plan_parts("shop", 1),
        )

    def test_finds_its_note_beyond_the_first_page_and_skips_system_notes(self):
        for i in range(12):
            self.gl.add(f"chatter {i}")
        # A system note quoting the marker first (e.g. an edit record): never ours.
        self.gl.add(plan_parts("shop", 1)[0], system=True)
        self.gl.add(plan_parts("shop", 1)[0])
        self.gl.add("> <!-- terrace-plan: shop -->\n> quoted by someone: not ours")
        out = self.run_script(plan_parts("shop", 1, " (new)"))
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("0 posted, 1 updated", out.stdout)
        self.assertEqual(len(self.gl.bodies()), 15)
        self.assertEqual(self.gl.bodies()[12], plan_parts("shop", 1)[0])
        self.assertEqual(self.gl.bodies()[13], plan_parts("shop", 1, " (new)")[0])

    def test_api_errors_fail_the_job_without_printing_the_token(self):
        self.gl.fail_writes = True
        out = self.run_script(plan_parts("shop", 2))
        self.assertEqual(out.returncode, 1)
        self.assertIn("HTTP 403", out.stderr)
        out = self.run_script(token="wrong-token")
        self.assertEqual(out.returncode, 1)
        self.assertIn("HTTP 401", out.stderr)
        self.assertNotIn("wrong-token", out.stdout + out.stderr)

    def test_refuses_parts_that_are_not_a_terrace_plan_and_bad_projects(self):
        out = self.run_script(["no marker here"])
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("does not start with a terrace-plan marker", out.stderr)
        self.assertEqual(self.gl.writes, [])
        write_parts(self.dir.name, plan_parts("shop", 1))
        out = subprocess.run(
            [sys.executable, SCRIPT, "--project", "../../etc", "--mr", "1",
             "--parts-dir", self.dir.name, "--api", self.gl.url],
            env=dict(os.environ, GITLAB_TOKEN=TOKEN), capture_output=True, text=True, timeout=60,
        )
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("--project must be", out.stderr)

    @unittest.skipUnless(os.environ.get("PARTS_DIR"), "PARTS_DIR: parts rendered by terrace")
    def test_posts_the_parts_terrace_rendered(self):
        src = os.environ["PARTS_DIR"]
        parts = []
        for n in sorted(os.listdir(src)):
            with open(os.path.join(src, n), encoding="utf-8") as f:
                parts.append(f.read().rstrip("\n"))
        self.assertGreater(len(parts), 1, "the rendered plan should need several parts")
        out = self.run_script(parts)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(self.gl.bodies(), parts)
        out = self.run_script()
        self.assertIn(f"0 posted, 0 updated, {len(parts)} unchanged, 0 deleted", out.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
