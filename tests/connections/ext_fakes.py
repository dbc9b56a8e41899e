"""Fake Jira and Confluence REST servers on ``LocalHTTPServer`` (no real Atlassian runs here).

They answer with the documented JSON shapes that atlassian-python-api parses:

- Jira Server/DC ``/rest/api/2/search``: ``startAt``/``maxResults``/``total``/``issues``,
  capping ``maxResults`` like a real server; Jira Cloud ``/rest/api/3/search/jql`` with
  ``nextPageToken``/``isLast``.
- Confluence ``/rest/api/search``: ``results``/``start``/``limit``/``size``/``totalSize``
  and ``_links.next`` until the last page.

Both check credentials (Bearer token or HTTP Basic) and answer 401 otherwise.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

from nbinfra.testing import LocalHTTPServer, Request, Response


@dataclass
class Auth:
    token: str | None = None
    username: str | None = None
    password: str | None = None

    def accepts(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        if self.token is not None and header == f"Bearer {self.token}":
            return True
        if self.username is not None and header.startswith("Basic "):
            decoded = base64.b64decode(header[6:]).decode()
            return decoded == f"{self.username}:{self.password}"
        return False


# Just enough query grammar to refuse nonsense as the real servers do (HTTP 400):
# clauses `field op value` joined by AND/OR, optionally ORDER BY.
_VALUE = r"(?:'[^']*'|\"[^\"]*\"|[\w.-]+)"
_CLAUSE = rf"\w+\s*(?:=|!=|~)\s*{_VALUE}"
_GRAMMAR = re.compile(
    rf"\s*(?:{_CLAUSE}(?:\s+(?:AND|OR)\s+{_CLAUSE})*)?(?:\s*ORDER BY [\w ,]+)?\s*", re.I
)


def parses(query: str) -> bool:
    return _GRAMMAR.fullmatch(query) is not None


def _query(request: Request) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(request.query, keep_blank_values=True).items()}


_UNAUTHORIZED = Response(
    401,
    {"errorMessages": ["You are not authenticated. Authentication required to perform this."]},
    headers={"Content-Type": "application/json;charset=UTF-8"},
)


@dataclass
class FakeJira:
    """An in-memory Jira answering the REST calls nbinfra makes."""

    server: LocalHTTPServer
    auth: Auth
    issues: list[dict[str, Any]] = field(default_factory=list)
    max_page: int = 50  # a real Jira caps maxResults (default 50 on Server)
    version: str = "9.12.4"

    def install(self) -> FakeJira:
        s = self.server
        s.route("GET", "/rest/api/2/serverInfo", self._checked(self._server_info))
        s.route("GET", "/rest/api/2/search", self._checked(self._search))
        s.route("GET", "/rest/api/3/search/jql", self._checked(self._search_cloud))
        s.route("GET", "/rest/api/2/issue/*", self._checked(self._get_issue))
        s.route("POST", "/rest/api/2/issue", self._checked(self._create_issue))
        return self

    def add(self, project: str, summary: str, **fields: Any) -> dict[str, Any]:
        number = sum(1 for i in self.issues if i["key"].startswith(project + "-")) + 1
        issue_id = str(10000 + len(self.issues))
        key = f"{project}-{number}"
        issue = {
            "id": issue_id,
            "key": key,
            "self": f"{self.server.url}/rest/api/2/issue/{issue_id}",
            "fields": {
                "summary": summary,
                "project": {"key": project, "name": project.title()},
                "status": {"name": fields.pop("status", "To Do")},
                "issuetype": {"name": fields.pop("issuetype", "Task")},
                "assignee": (
                    {"displayName": fields.pop("assignee")} if "assignee" in fields else None
                ),
                "priority": {"name": fields.pop("priority", "Medium")},
                "created": "2024-05-01T10:00:00.000+0000",
                "updated": "2024-05-02T11:30:00.000+0000",
                "labels": fields.pop("labels", []),
                **fields,
            },
        }
        self.issues.append(issue)
        return issue

    def _checked(self, handler: Any) -> Any:
        def answer(request: Request) -> Response:
            if not self.auth.accepts(request):
                return _UNAUTHORIZED
            result: Response = handler(request)
            return result

        return answer

    def _server_info(self, _request: Request) -> Response:
        return Response(
            200, {"baseUrl": self.server.url, "version": self.version, "serverTitle": "Jira"}
        )

    def _matching(self, jql: str) -> list[dict[str, Any]]:
        # Enough JQL for tests: "project = KEY" and "status = 'X'", joined by AND.
        found = list(self.issues)
        for name, value in re.findall(r"(\w+)\s*=\s*['\"]?([\w -]+?)['\"]?(?:\s+AND|\s*$)", jql):
            if name == "project":
                found = [i for i in found if i["fields"]["project"]["key"] == value]
            elif name == "status":
                found = [i for i in found if i["fields"]["status"]["name"] == value]
        return found

    def _bad_jql(self, jql: str) -> Response:
        return Response(
            400,
            {"errorMessages": [f"Error in the JQL Query: cannot parse '{jql}'."], "errors": {}},
        )

    def _search(self, request: Request) -> Response:
        q = _query(request)
        if not parses(q.get("jql", "")):
            return self._bad_jql(q.get("jql", ""))
        matching = self._matching(q.get("jql", ""))
        start = int(q.get("startAt", 0))
        size = min(int(q.get("maxResults", 50)), self.max_page)
        page = matching[start : start + size]
        return Response(
            200,
            {
                "expand": "schema,names",
                "startAt": start,
                "maxResults": size,
                "total": len(matching),
                "issues": page,
            },
        )

    def _search_cloud(self, request: Request) -> Response:
        q = _query(request)
        if not parses(q.get("jql", "")):
            return self._bad_jql(q.get("jql", ""))
        matching = self._matching(q.get("jql", ""))
        start = int(q.get("nextPageToken") or 0)
        size = min(int(q.get("maxResults", 50)), self.max_page)
        page = matching[start : start + size]
        body: dict[str, Any] = {"issues": page, "isLast": start + size >= len(matching)}
        if not body["isLast"]:
            body["nextPageToken"] = str(start + size)
        return Response(200, body)

    def _get_issue(self, request: Request) -> Response:
        key = request.path.rsplit("/", 1)[-1]
        for issue in self.issues:
            if key in (issue["key"], issue["id"]):
                return Response(200, issue)
        return Response(
            404,
            {
                "errorMessages": ["Issue does not exist or you do not have permission to see it."],
                "errors": {},
            },
        )

    def _create_issue(self, request: Request) -> Response:
        fields = dict(request.json()["fields"])
        if not fields.get("summary"):
            return Response(
                400, {"errorMessages": [], "errors": {"summary": "You must specify a summary."}}
            )
        project = fields.pop("project")["key"]
        summary = fields.pop("summary")
        issuetype = fields.pop("issuetype", {}).get("name", "Task")
        issue = self.add(project, summary, issuetype=issuetype, **fields)
        return Response(201, {"id": issue["id"], "key": issue["key"], "self": issue["self"]})


@dataclass
class FakeConfluence:
    """An in-memory Confluence (Server/DC REST v1 shapes)."""

    server: LocalHTTPServer
    auth: Auth
    pages: list[dict[str, Any]] = field(default_factory=list)
    max_page: int = 25

    def install(self) -> FakeConfluence:
        s = self.server
        s.route("GET", "/rest/api/search", self._checked(self._search))
        s.route("GET", "/rest/api/space", self._checked(self._spaces))
        s.route("GET", "/rest/api/content/*", self._checked(self._get_page))
        s.route("POST", "/rest/api/content/", self._checked(self._create_page))
        s.route("POST", "/rest/api/content", self._checked(self._create_page))
        return self

    def add(self, space: str, title: str, body: str = "<p>text</p>") -> dict[str, Any]:
        page_id = str(65000 + len(self.pages))
        page = {
            "id": page_id,
            "type": "page",
            "status": "current",
            "title": title,
            "space": {"key": space, "name": space.title()},
            "version": {"number": 1, "when": "2024-05-03T09:00:00.000Z"},
            "body": {"storage": {"value": body, "representation": "storage"}},
            "_links": {"webui": f"/spaces/{space}/pages/{page_id}", "self": ""},
        }
        self.pages.append(page)
        return page

    def _checked(self, handler: Any) -> Any:
        def answer(request: Request) -> Response:
            if not self.auth.accepts(request):
                return Response(401, "Unauthorized", headers={"Content-Type": "text/plain"})
            result: Response = handler(request)
            return result

        return answer

    def _matching(self, cql: str) -> list[dict[str, Any]]:
        found = list(self.pages)
        space = re.search(r"space\s*=\s*['\"]?(\w+)", cql)
        if space:
            found = [p for p in found if p["space"]["key"] == space.group(1)]
        text = re.search(r"(?:text|title)\s*~\s*['\"]([^'\"]+)['\"]", cql)
        if text:
            word = text.group(1).lower()
            found = [p for p in found if word in p["title"].lower()]
        return found

    def _search(self, request: Request) -> Response:
        q = _query(request)
        cql = q.get("cql", "")
        if not parses(cql):
            return Response(400, {"statusCode": 400, "message": f"Could not parse cql : {cql}"})
        matching = self._matching(cql)
        start = int(q.get("start", 0))
        limit = min(int(q.get("limit", 25)), self.max_page)
        page = matching[start : start + limit]
        results = [
            {
                "content": {
                    "id": p["id"],
                    "type": p["type"],
                    "status": p["status"],
                    "title": p["title"],
                    "space": p["space"],
                    "_links": p["_links"],
                },
                "title": p["title"],
                "excerpt": p["body"]["storage"]["value"][:40],
                "url": p["_links"]["webui"],
                "entityType": "content",
                "lastModified": p["version"]["when"],
            }
            for p in page
        ]
        links: dict[str, Any] = {"base": self.server.url, "context": ""}
        if start + limit < len(matching):
            links["next"] = "/rest/api/search?" + urlencode(
                {"cql": cql, "start": start + limit, "limit": limit}
            )
        return Response(
            200,
            {
                "results": results,
                "start": start,
                "limit": limit,
                "size": len(results),
                "totalSize": len(matching),
                "cqlQuery": cql,
                "_links": links,
            },
        )

    def _spaces(self, request: Request) -> Response:
        keys = sorted({p["space"]["key"] for p in self.pages})
        results = [{"key": k, "name": k.title(), "type": "global"} for k in keys]
        return Response(200, {"results": results, "start": 0, "limit": 25, "size": len(keys)})

    def _get_page(self, request: Request) -> Response:
        page_id = request.path.rstrip("/").rsplit("/", 1)[-1]
        for page in self.pages:
            if page["id"] == page_id:
                return Response(200, page)
        return Response(404, {"statusCode": 404, "message": f"No content found with id: {page_id}"})

    def _create_page(self, request: Request) -> Response:
        data = request.json()
        page = self.add(data["space"]["key"], data["title"], data["body"]["storage"]["value"])
        if data.get("ancestors"):
            page["ancestors"] = data["ancestors"]
        return Response(200, page)
