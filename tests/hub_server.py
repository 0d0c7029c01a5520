"""A loopback stand-in for the part of the Hugging Face Hub API that ``HfApi.upload_folder`` speaks.

The Hub is unreachable from here, so push tests point ``HF_ENDPOINT`` at this server. It implements
the real protocol, as the installed ``huggingface_hub`` drives it (see ``_commit_api.py``/``lfs.py``):

- ``POST /api/repos/create``: create a repo (409 when it exists, which ``exist_ok`` accepts);
- ``POST /api/models/<repo>/preupload/<rev>``: per file, "lfs" for weights and images, else "regular";
- ``POST /<repo>.git/info/lfs/objects/batch``: the LFS batch API, "basic" transfer, an upload href here;
- ``PUT /lfs-upload/<oid>``: the LFS object bytes (checked against their sha256);
- ``POST /api/models/<repo>/commit/<rev>``: the ndjson commit (header, inline files, lfsFile pointers);
- ``POST /api/validate-yaml``: the README.md metadata check ``upload_folder`` runs first (400 if the
  YAML header does not parse or is not a mapping).

``GET /api/agent-harnesses`` (a best-effort registry the client fetches once a day) answers 404 and is
not counted as unknown: the client swallows that error by design.

Xet storage is the Hub's other upload path; clients use it when ``hf_xet`` is installed, so tests set
``HF_HUB_DISABLE_XET=1`` to stay on LFS, which the Hub still serves. Every request is recorded
(method, path, headers, body) for the test to inspect; anything unknown answers 404 and is recorded.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

import yaml

_LFS_SUFFIXES = (".safetensors", ".png", ".bin")


@dataclass
class HubState:
    """What arrived: repos created, LFS objects, commits (message + files with their bytes), all requests."""

    repos: dict[str, dict] = field(default_factory=dict)
    lfs: dict[str, bytes] = field(default_factory=dict)
    commits: list[dict] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    validated: list[dict] = field(default_factory=list)  # README metadata headers checked


class _Handler(BaseHTTPRequestHandler):
    state: HubState
    endpoint: str

    def log_message(self, format, *args) -> None:  # keep test output clean
        pass

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reply(self, status: int, payload: dict | None = None) -> None:
        data = json.dumps(payload or {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self, body: bytes) -> None:
        self.state.requests.append({"method": self.command, "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                    "body": body})

    def do_POST(self) -> None:
        body = self._body()
        self._record(body)
        path = self.path.split("?")[0]
        if path == "/api/repos/create":
            return self._create_repo(json.loads(body))
        if path.startswith("/api/models/") and "/preupload/" in path:
            return self._preupload(json.loads(body))
        if path.endswith(".git/info/lfs/objects/batch"):
            return self._lfs_batch(json.loads(body))
        if path == "/api/validate-yaml":
            return self._validate_yaml(json.loads(body))
        if path.startswith("/api/models/") and "/commit/" in path:
            repo = path[len("/api/models/"):].split("/commit/")[0]
            return self._commit(repo, body)
        self.state.unknown.append(f"POST {self.path}")
        self._reply(404, {"error": "not implemented by the test hub"})

    def do_PUT(self) -> None:
        body = self._body()
        self._record(body)
        if self.path.startswith("/lfs-upload/"):
            oid = self.path.rsplit("/", 1)[1]
            if hashlib.sha256(body).hexdigest() != oid:
                return self._reply(400, {"error": "sha256 mismatch"})
            self.state.lfs[oid] = body
            return self._reply(200)
        self.state.unknown.append(f"PUT {self.path}")
        self._reply(404)

    def do_GET(self) -> None:
        self._record(b"")
        if self.path.split("?")[0] != "/api/agent-harnesses":
            self.state.unknown.append(f"GET {self.path}")
        self._reply(404, {"error": "not implemented by the test hub"})

    def _create_repo(self, payload: dict) -> None:
        repo = f"{payload.get('organization')}/{payload['name']}"
        if repo in self.state.repos:
            return self._reply(409, {"error": "You already created this model repo", "url": f"{self.endpoint}/{repo}"})
        private = payload.get("visibility", "private" if payload.get("private") else "public") == "private"
        self.state.repos[repo] = {"private": private, "type": payload.get("type", "model")}
        self._reply(200, {"url": f"{self.endpoint}/{repo}", "name": repo, "id": repo})

    def _validate_yaml(self, payload: dict) -> None:
        content = payload.get("content", "")
        header = content.split("---")[1] if content.startswith("---") and content.count("---") >= 2 else ""
        try:
            parsed = yaml.safe_load(header)
        except yaml.YAMLError as exc:
            return self._reply(400, {"errors": [{"message": f"invalid YAML: {exc}"}]})
        if not isinstance(parsed, dict):
            return self._reply(400, {"errors": [{"message": "metadata must be a YAML mapping"}]})
        self.state.validated.append(parsed)
        self._reply(200, {"errors": [], "warnings": []})

    def _preupload(self, payload: dict) -> None:
        files = [{"path": f["path"], "uploadMode": "lfs" if f["path"].endswith(_LFS_SUFFIXES) else "regular",
                  "shouldIgnore": False, "oid": None} for f in payload["files"]]
        self._reply(200, {"files": files, "commitOid": "0" * 40})

    def _lfs_batch(self, payload: dict) -> None:
        objects = [{"oid": o["oid"], "size": o["size"], "authenticated": True,
                    "actions": {"upload": {"href": f"{self.endpoint}/lfs-upload/{o['oid']}"}}}
                   for o in payload["objects"]]
        self._reply(200, {"transfer": "basic", "objects": objects})

    def _commit(self, repo: str, body: bytes) -> None:
        if repo not in self.state.repos:
            return self._reply(404, {"error": f"Repository {repo} not found"})
        commit = {"repo": repo, "message": None, "files": {}}
        for line in body.decode().splitlines():
            item = json.loads(line)
            value = item["value"]
            if item["key"] == "header":
                commit["message"] = value["summary"]
            elif item["key"] == "file":
                commit["files"][value["path"]] = base64.b64decode(value["content"])
            elif item["key"] == "lfsFile":
                if value["oid"] not in self.state.lfs:
                    return self._reply(422, {"error": f"LFS object {value['oid']} was never uploaded"})
                commit["files"][value["path"]] = self.state.lfs[value["oid"]]
        self.state.commits.append(commit)
        oid = hashlib.sha1(body).hexdigest()
        self._reply(200, {"commitUrl": f"{self.endpoint}/{repo}/commit/{oid}", "commitOid": oid})


class HubServer:
    """The test hub on a free loopback port, served from a thread; ``url`` goes into ``HF_ENDPOINT``."""

    def __init__(self) -> None:
        self.state = HubState()
        handler = type("Handler", (_Handler,), {"state": self.state, "endpoint": ""})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        handler.endpoint = self.url
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
