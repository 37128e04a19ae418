"""Image URLs the server fetches or checks: only http(s), only public hosts (SSRF guard).

Hosts that resolve to loopback, private or link-local addresses are refused (every
redirect hop too) unless ``allow_private_image_urls`` is set. ``fetch_image_url`` downloads
one image (prediction, Custom Vision); ``check_image_urls`` checks many in parallel (task
TSV uploads), answering a plain reason for each one that does not lead to an image.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import urllib.parse
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import httpx

from app.errors import UploadRejected, ValidationFailed
from app.settings import get_settings

MAX_REDIRECTS = 3
URL_TIMEOUT_SECONDS = 10.0
SNIFF_BYTES = 64  # enough to recognise an image by its first bytes
IMAGE_MAGIC = (
    b"\xff\xd8\xff",  # JPEG
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"BM",
)

# hosts that the C library reads as an IPv4 address in a legacy form: octal (0177.0.0.1),
# hex (0x7f.1), fewer parts (127.1) or one integer (2130706433)
_NUMERIC_HOST = re.compile(r"(?i)(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?")


def parse_image_url(url: str) -> httpx.URL:
    """An http(s) URL to fetch, with a numeric host in any of the forms the OS accepts
    written as the dotted address it means (so the private-address check sees it).

    Raises:
        ValidationFailed: not an http(s) URL, or a host that is no valid address.
    """
    url = (url or "").strip()
    bad = ValidationFailed("Give an http(s) image URL.", errors={"url": "Not an http(s) URL."})
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        raise bad from None
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise bad
    if _NUMERIC_HOST.fullmatch(host):
        try:
            dotted = socket.inet_ntoa(socket.inet_aton(host.rstrip(".")))
        except OSError:
            raise ValidationFailed(
                f"{host} is not a valid IP address.", errors={"url": "Invalid IP address."}
            ) from None
        netloc = parts.netloc.rsplit("@", 1)
        hostport = netloc[-1]
        port = f":{parts.port}" if parts.port is not None else ""
        netloc[-1] = f"{dotted}{port}"
        if hostport.lower() != netloc[-1]:
            url = urllib.parse.urlunsplit(parts._replace(netloc="@".join(netloc)))
    try:
        return httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise ValidationFailed(
            f"Not a valid image URL: {exc}", errors={"url": "Invalid URL."}
        ) from None


def _is_public(raw: str) -> bool:
    try:
        address = ipaddress.ip_address(raw.split("%", 1)[0])  # (an IPv6 zone: fe80::1%eth0)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_global and (mapped is None or mapped.is_global)


def check_public_host(url: httpx.URL) -> None:
    """Refuse URLs whose host resolves to a loopback, private or link-local address (SSRF)."""
    if get_settings().allow_private_image_urls:
        return
    try:
        infos = socket.getaddrinfo(url.host, url.port or (443 if url.scheme == "https" else 80))
    except (socket.gaierror, UnicodeError, ValueError):
        raise UploadRejected(f"Cannot resolve the host of {url}.", file=str(url)) from None
    for info in infos:
        if not _is_public(str(info[4][0])):
            raise UploadRejected(
                f"{url.host} is a private or local address; the server only fetches public "
                "image URLs.",
                file=str(url),
            )


def _network_problem(exc: httpx.HTTPError) -> str:
    """A plain sentence for a failed request (no exception class names)."""
    if isinstance(exc, httpx.TimeoutException):
        return "the server did not answer in time"
    if isinstance(exc, httpx.ConnectError):
        return "the server could not be reached"
    if isinstance(exc, httpx.TooManyRedirects):
        return "too many redirects"
    return "the download failed"


def fetch_image_url(url: str, *, transport: httpx.BaseTransport | None = None) -> bytes:
    """Download an image (http/https only), with a timeout and the per-image size limit.

    Hosts that resolve to loopback, private or link-local addresses are refused (every
    redirect hop is checked too) unless ``allow_private_image_urls`` is set.
    """
    url = (url or "").strip()
    parsed = parse_image_url(url)
    limit = get_settings().max_image_bytes
    try:
        with httpx.Client(
            timeout=URL_TIMEOUT_SECONDS, follow_redirects=False, transport=transport
        ) as client:
            for _hop in range(MAX_REDIRECTS + 1):
                check_public_host(parsed)
                with client.stream("GET", parsed) as response:
                    if response.is_redirect and response.has_redirect_location:
                        parsed = parse_image_url(str(response.next_request.url))
                        continue
                    if response.status_code != 200:
                        raise UploadRejected(
                            f"The image URL answered HTTP {response.status_code}.", file=url
                        )
                    declared = response.headers.get("content-length")
                    if declared and declared.isdigit() and int(declared) > limit:
                        raise UploadRejected(
                            f"The image at {url} is larger than the limit.", file=url
                        )
                    chunks, size = [], 0
                    for chunk in response.iter_bytes():
                        size += len(chunk)
                        if size > limit:
                            raise UploadRejected(
                                f"The image at {url} is larger than the limit.", file=url
                            )
                        chunks.append(chunk)
                    return b"".join(chunks)
            raise UploadRejected(f"Too many redirects for {url}.", file=url)
    except httpx.HTTPError as exc:
        raise UploadRejected(
            f"Could not download {url}: {_network_problem(exc)}.", file=url
        ) from None


def _looks_like_image(content_type: str, head: bytes) -> bool:
    if content_type.split(";", 1)[0].strip().lower().startswith("image/"):
        return True
    return head.startswith(IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def url_problem(
    url: str, *, client: httpx.Client, timeout: float = URL_TIMEOUT_SECONDS
) -> str | None:
    """Why ``url`` does not lead to an image, as a plain phrase; None when it does.

    Only the first bytes are read: the answer must be HTTP 200 with an image type (or
    an image's first bytes). Every redirect hop goes through the private-address guard."""
    try:
        parsed = parse_image_url(url)
    except ValidationFailed:
        return "not a valid http(s) URL"
    try:
        for _hop in range(MAX_REDIRECTS + 1):
            check_public_host(parsed)
            with client.stream("GET", parsed, timeout=timeout) as response:
                if response.is_redirect and response.has_redirect_location:
                    parsed = parse_image_url(str(response.next_request.url))
                    continue
                if response.status_code != 200:
                    return f"the server answered HTTP {response.status_code}"
                head = b""
                for chunk in response.iter_bytes():
                    head += chunk
                    if len(head) >= SNIFF_BYTES:
                        break
                content_type = response.headers.get("content-type", "")
                if not _looks_like_image(content_type, head):
                    shown = content_type.split(";", 1)[0].strip() or "no content type"
                    return f"not an image ({shown})"
                return None
        return "too many redirects"
    except UploadRejected as exc:
        if "private or local address" in exc.message:
            return "a private or local address; only public image URLs are allowed"
        return "the host name cannot be resolved"
    except ValidationFailed:
        return "a redirect to an invalid URL"
    except httpx.HTTPError as exc:
        return _network_problem(exc)


def check_image_urls(
    urls: Iterable[str],
    *,
    concurrency: int = 8,
    timeout: float = URL_TIMEOUT_SECONDS,
    transport: httpx.BaseTransport | None = None,
    progress=None,
) -> dict[str, str]:
    """Check URLs in parallel (at most ``concurrency`` at a time, each within ``timeout``
    seconds); returns ``{url: reason}`` for those that do not lead to an image.

    ``progress(done, total)`` is called as checks finish (from the calling thread)."""
    distinct = list(dict.fromkeys(urls))
    problems: dict[str, str] = {}
    if not distinct:
        return problems
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with (
        httpx.Client(
            timeout=timeout, follow_redirects=False, transport=transport, limits=limits
        ) as client,
        ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool,
    ):
        answers = pool.map(lambda u: url_problem(u, client=client, timeout=timeout), distinct)
        for done, (url, problem) in enumerate(zip(distinct, answers, strict=True), start=1):
            if problem:
                problems[url] = problem
            if progress is not None:
                progress(done, len(distinct))
    return problems
