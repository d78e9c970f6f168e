"""A small client for the GitHub REST API (issues, milestones, pull-request reviews), with pagination."""

from __future__ import annotations

import requests

from relcheck.core.statuses import NotVerified


class GitHub:
    def __init__(self, api_url: str, repo: str, token: str = "", timeout: float = 10.0) -> None:
        self.api_url = api_url.rstrip("/")
        self.repo = repo
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers.update({"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"})
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def get_all(self, path: str, params: dict | None = None, limit_pages: int = 50) -> list:
        """GET every page of a list endpoint (follows Link: rel="next")."""
        url, items = f"{self.api_url}/repos/{self.repo}/{path}", []
        params = {"per_page": 100, **(params or {})}
        for _ in range(limit_pages):
            try:
                response = self.session.get(url, params=params, timeout=self.timeout)
            except requests.RequestException as exc:
                raise NotVerified(f"GitHub API unreachable at {self.api_url} ({type(exc).__name__})") from None
            if response.status_code != 200:
                message = (
                    response.json().get("message", "")
                    if "json" in response.headers.get("content-type", "")
                    else response.text[:100]
                )
                raise NotVerified(f"GitHub API answered {response.status_code} for {path}: {message}")
            items.extend(response.json())
            next_link = response.links.get("next", {}).get("url")
            if not next_link:
                return items
            url, params = next_link, None
        raise NotVerified(f"GitHub API: more than {limit_pages} pages for {path}")
