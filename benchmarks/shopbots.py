"""Background traffic of the simulated shop: crawlers, tools, health checks, garbage lines.

Every user agent here comes from `user_agents.txt` and is one that crawlerdetect flags, so no
request of this module can be mistaken for a person (tests/test_generate.py checks that).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

if __package__:
    from .logpools import ClfClock, find_ua, random_ipv4
    from .shoptruth import Rec
else:
    from logpools import ClfClock, find_ua, random_ipv4
    from shoptruth import Rec

CATEGORIES = ("shoes", "dresses", "jackets", "accessories", "bags", "kitchen", "gifts", "sale")
HEALTH_IP, HEALTH_UA = "10.0.1.15", "kube-probe/1.29"
# (UA fragment in user_agents.txt, client network or fixed IP, weight, behaviour)
AGENTS = (
    ("Mozilla/5.0 (compatible; Googlebot/2.1;", "66.249.66.", 12, "crawl"),
    ("Nexus 5X Build/MMB29P", "66.249.68.", 8, "crawl"),
    ("Googlebot-Image/1.0", "66.249.66.", 3, "image"),
    ("Mozilla/5.0 (compatible; bingbot/2.0;", "157.55.39.", 9, "crawl"),
    ("AhrefsBot/7.0", "54.36.148.", 8, "crawl"),
    ("SemrushBot/7~bl", "185.191.171.", 7, "crawl"),
    ("YandexBot/3.0", "5.255.253.", 4, "crawl"),
    ("Baiduspider/2.0", "220.181.108.", 3, "crawl"),
    ("DuckDuckBot/1.1", "20.191.45.212", 2, "crawl"),
    ("GPTBot/1.2", "20.171.207.", 5, "crawl"),
    ("Applebot/0.1", "17.241.219.", 2, "crawl"),
    ("facebookexternalhit/1.1", "69.171.249.", 4, "preview"),
    ("Twitterbot/1.0", "199.16.157.", 2, "preview"),
    ("python-requests/2.31.0", "198.51.100.23", 8, "scraper"),
    ("curl/8.5.0", "203.0.113.10", 5, "monitor"),
    ("zgrab/0.x", "", 4, "scanner"),
)
PROBES = ("/wp-login.php", "/.env", "/.git/config", "/xmlrpc.php", "/phpmyadmin/index.php", "/admin/.env",
          "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php", "/config.json", "/backup.zip")
TLS = r"\x16\x03\x01\x02\x00\x01\x00\x01\xFC\x03\x03\x9A\xD4l\x1B\xE2W\xC7"


def _ip(rng: random.Random, net: str) -> str:
    if not net:
        return random_ipv4(rng)
    return net + str(rng.randint(2, 254)) if net.endswith(".") else net


def _bot_request(rng: random.Random, behaviour: str) -> tuple[str, str, int, int]:
    """(method, target, status, size) for one request of a non-human agent."""
    pid = rng.randint(1001, 1120)
    if behaviour == "image":
        return "GET", f"/static/img/products/{pid}.png", 200, rng.randint(30_000, 90_000)
    if behaviour == "preview":
        return "GET", f"/products/{pid}", rng.choice((200, 200, 206)), rng.randint(12_000, 40_000)
    if behaviour == "scraper":
        if rng.random() < 0.1:
            return "GET", f"/api/v1/products?category={rng.choice(CATEGORIES)}&page={rng.randint(1, 9)}", 429, 64
        return "GET", f"/api/v1/products?category={rng.choice(CATEGORIES)}&page={rng.randint(1, 9)}", 200, rng.randint(2_000, 9_000)
    if behaviour == "monitor":
        return "GET", "/", 200, rng.randint(24_000, 26_000)
    if behaviour == "scanner":
        return rng.choice(("GET", "GET", "POST")), rng.choice(PROBES), 404, 153
    r = rng.random()
    if r < 0.01:
        return "GET", f"/category/{rng.choice(CATEGORIES)}?page={rng.randint(3, 40)}", 503, 197  # rate limited
    if r < 0.05:
        return "GET", "/robots.txt", 200, 113
    if r < 0.09:
        return "GET", "/sitemap.xml", 200, 48_310
    if r < 0.12:
        return "GET", f"/products/{rng.randint(9000, 9999)}", 404, 1_562
    if r < 0.15:
        return "GET", f"/products/{pid}/", 301, 169
    if r < 0.22:
        return "GET", rng.choice(("/static/app.css", "/static/app.js")), 200, rng.choice((48_211, 184_233))
    if r < 0.68:
        return "GET", f"/products/{pid}", 200, rng.randint(12_000, 40_000)
    if r < 0.9:
        return "GET", f"/category/{rng.choice(CATEGORIES)}" + ("?page=2" if rng.random() < 0.3 else ""), 200, 31_000
    return ("HEAD" if rng.random() < 0.2 else "GET"), "/", 200, 24_500


def _rec(t: float, ip: str, method: str | None, target: str, status: int, size: int, ua: str, kind: str,
         label: str = "", raw: str | None = None) -> Rec:
    return Rec(t, t, ip, "-", method, target, "HTTP/1.1", status, str(size), "-", ua, -1, kind, label, raw)


def background(rng: random.Random, start: float, span: float, *, bots: int, health: int, noise: int,
               malformed: int, clock: ClfClock) -> list[Rec]:
    """Exactly bots + health + noise + malformed records of non-human traffic over the span."""
    out: list[Rec] = []
    agents = [(find_ua(frag), net, w, b) for frag, net, w, b in AGENTS]
    scanner_t, scanned, scanner_ip = start + rng.random() * (span - 3600), 0, random_ipv4(rng)
    for _ in range(bots):
        ua, net, _, behaviour = rng.choices(agents, [a[2] for a in agents])[0]
        method, target, status, size = _bot_request(rng, behaviour)
        t = start + rng.random() * span
        label = ""
        if behaviour == "scanner":  # one burst; its first two probes are the quirky ones
            t, scanned = scanner_t + scanned * rng.uniform(0.3, 3), scanned + 1
            if scanned == 1:
                target, status, size, label = "/search?q=" + "%41" * 1500 + "&x=" + "A" * 2000, 414, 0, "long_url"
            elif scanned == 2:
                target, label = r"/produkte/gr\xC3\xB6\xC3\x9Fe", "escaped_utf8_path"
        out.append(_rec(t, scanner_ip if behaviour == "scanner" else _ip(rng, net), method, target, status, size, ua,
                        "bot", label))
    period = span / max(health, 1)
    for i in range(health):
        out.append(_rec(start + 7 + i * period, HEALTH_IP, "GET", "/healthz", 200, 2, HEALTH_UA, "health"))
    for i in range(noise):
        request, size, label = (("-", 0, "dash_request"), ("", 0, "empty_request"), (TLS, 157, "tls_handshake"))[i % 3]
        out.append(_rec(start + rng.random() * span, random_ipv4(rng), None, request, 400, size, "-", "noise", label))
    for i in range(malformed):
        t = start + rng.random() * span
        ts = clock.render(int(t))
        ip = _ip(rng, "66.249.66.")
        kind = ("truncated", "error_log", "nul_bytes", "bad_date")[i % 4]
        if kind == "truncated":  # the writer died mid-line
            raw = f"{ip} - - [{ts[:rng.randint(6, 16)]}\n"
        elif kind == "error_log":  # an error-log line that ended up in the access log
            local = datetime.fromtimestamp(int(t) + clock.shift, UTC).strftime("%Y/%m/%d %H:%M:%S")
            raw = (f"{local} [error] 31#31: *{rng.randint(1000, 99999)} upstream timed "
                   f"out (110: Connection timed out) while reading response header from upstream, client: "
                   f"198.51.100.23, server: shop.example.com, request: \"GET /api/v1/products?category=sale "
                   f"HTTP/1.1\", upstream: \"http://10.0.2.7:8080/api/v1/products?category=sale\"\n")
        elif kind == "nul_bytes":  # a crash left preallocated, zeroed blocks behind
            raw = "\x00" * rng.randint(40, 200) + "\n"
        else:
            raw = (f'{ip} - - [{ts[:12]}25:61:{ts[18:]}] "GET /products/{rng.randint(1001, 1120)} HTTP/1.1" 200 '
                   f'18211 "-" "{agents[0][0]}"\n')
        out.append(_rec(t, ip, None, "", 0, 0, "-", "malformed", kind, raw))
    return out
