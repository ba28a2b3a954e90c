"""depot.packages.urls: where a non-admin may point a package's content_url. Nothing here leaves
the machine: names are ``localhost`` (the system resolver) or resolved by a fake resolver, and the
public examples are documentation addresses that are never contacted."""

import ipaddress

import pytest

from depot.packages import urls

CONTROLLER = "http://198.51.100.20:8080"      # a "public" controller, so loopback is judged as loopback


def fake_resolver(table):
    def resolve(host, port):
        if host not in table:
            raise OSError(f"unknown host {host}")
        return table[host]
    return resolve


@pytest.mark.parametrize("url", [
    "http://203.0.113.7/agent.deb",
    "https://203.0.113.7:8443/path/agent.deb?x=1#y",
    "HTTPS://203.0.113.7/agent.deb",
    "http://[2001:db8::7]/agent.deb",
    "http://[::ffff:203.0.113.7]/agent.deb",          # IPv4-mapped public: judged by its IPv4 address
])
def test_public_addresses_are_allowed(url):
    urls.check(url, [], CONTROLLER)


@pytest.mark.parametrize("url, why", [
    ("http://localhost/x", "loopback"),
    ("http://localhost:8080/api/v1/users", "loopback"),
    ("http://127.0.0.1/x", "loopback"),
    ("http://127.9.9.9/x", "loopback"),
    ("http://[::1]/x", "loopback"),
    ("http://[::ffff:127.0.0.1]/x", "loopback"),      # IPv4-mapped
    ("http://[::ffff:7f00:1]/x", "loopback"),
    ("http://[2002:7f00:1::]/x", "loopback"),          # 6to4 around 127.0.0.1
    ("http://[64:ff9b::7f00:1]/x", "loopback"),        # NAT64 around 127.0.0.1
    ("http://[::127.0.0.1]/x", "IPv4-compatible"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[fe80::1]/x", "link-local"),
    ("http://[::ffff:169.254.169.254]/x", "link-local"),
    ("http://10.0.0.1/x", "private"),
    ("http://172.16.5.4/x", "private"),
    ("http://192.168.1.1/x", "private"),
    ("http://[fd00::1]/x", "private"),
    ("http://100.64.0.1/x", "carrier-grade NAT"),
    ("http://0.0.0.0/x", "unspecified"),
    ("http://[::]/x", "unspecified"),
    ("http://224.0.0.1/x", "multicast"),
    ("http://255.255.255.255/x", "broadcast"),
])
def test_internal_addresses_are_refused(url, why):
    with pytest.raises(urls.ContentUrlError, match="internal address") as e:
        urls.check(url, [], CONTROLLER)
    assert why in str(e.value)


@pytest.mark.parametrize("url, why", [
    ("http://2130706433/x", "dotted-decimal"),          # 127.0.0.1 as one decimal number
    ("http://0x7f000001/x", "dotted-decimal"),
    ("http://0x7f.1/x", "dotted-decimal"),
    ("http://0177.0.0.1/x", "dotted-decimal"),           # octal
    ("http://127.1/x", "dotted-decimal"),
    ("http://017700000001/x", "dotted-decimal"),
    ("http://host.123/x", "dotted-decimal"),
    ("ftp://203.0.113.7/x", "http:// or https://"),
    ("file:///etc/passwd", "http:// or https://"),
    ("gopher://203.0.113.7:70/_x", "http:// or https://"),
    ("http:/203.0.113.7/x", "http:// or https://"),
    ("//203.0.113.7/x", "http:// or https://"),
    ("http://user:secret@203.0.113.7/x", "user name or password"),
    ("http://user@203.0.113.7/x", "user name or password"),
    ("http://203.0.113.7%2f@127.0.0.1/x", "user name or password"),
    ("http://203.0.113.7\\@127.0.0.1/x", "backslashes"),
    ("http://203.0.113.7 @127.0.0.1/x", "whitespace"),
    ("http://203.0.113.7\n/x", "whitespace"),
    ("http://127.0.0.1%2e/x", "percent-encoding"),
    ("http://[fe80::1%25eth0]/x", "zone ids"),
    ("http://[::ffff:127.0.0.1/x", "not a valid URL"),
    ("http://[203.0.113.7]/x", "IPv"),   # refused by urlsplit or by us, depending on the Python
    ("http://203.0.113.7:0/x", "out of range"),
    ("http://203.0.113.7:65536/x", "out of range"),
    ("http:///x", "host"),
    ("http://-bad-.example/x", "not a valid DNS name"),
    ("http://no-such-host.invalid/x", "does not resolve"),
])
def test_odd_urls_are_refused(url, why):
    with pytest.raises(urls.ContentUrlError) as e:
        urls.check(url, [], CONTROLLER, resolver=fake_resolver({}))
    assert why in str(e.value)


def test_every_address_of_a_name_must_be_allowed():
    resolver = fake_resolver({"mirror.example": ["203.0.113.7", "10.1.2.3"],
                              "cdn.example": ["203.0.113.7", "2001:db8::7"],
                              "sneaky.example": ["::ffff:169.254.169.254"]})
    urls.check("http://cdn.example/x", [], CONTROLLER, resolver=resolver)
    with pytest.raises(urls.ContentUrlError, match=r"mirror.example \(10.1.2.3\), an internal address \(private\)"):
        urls.check("http://mirror.example/x", [], CONTROLLER, resolver=resolver)
    with pytest.raises(urls.ContentUrlError, match="link-local"):
        urls.check("https://sneaky.example/x", [], CONTROLLER, resolver=resolver)
    with pytest.raises(urls.ContentUrlError, match="does not resolve"):
        urls.check("http://mirror.example/x", [], CONTROLLER, resolver=fake_resolver({"mirror.example": []}))


def test_the_system_resolver_is_used_by_default():
    with pytest.raises(urls.ContentUrlError, match=r"localhost \(127\.0\.0\.1|localhost \(::1"):
        urls.check("http://localhost:9/x", [], CONTROLLER)


def test_allowed_networks_open_internal_addresses_but_never_the_controller():
    allowed = [ipaddress.ip_network("10.20.0.0/16"), ipaddress.ip_network("fd00:1::/64")]
    urls.check("http://10.20.3.4/x", allowed, CONTROLLER)
    urls.check("http://[::ffff:10.20.3.4]/x", allowed, CONTROLLER)
    urls.check("http://[fd00:1::5]/x", allowed, CONTROLLER)
    with pytest.raises(urls.ContentUrlError, match="private"):
        urls.check("http://10.21.0.1/x", allowed, CONTROLLER)
    with pytest.raises(urls.ContentUrlError, match="this controller"):
        urls.check("http://10.20.0.9:8080/api/v1/content/x", allowed, "http://10.20.0.9:8080")
    # A public controller address is refused too, in any spelling that reaches it.
    for url in ("http://198.51.100.20:8080/x", "http://[::ffff:198.51.100.20]/x"):
        with pytest.raises(urls.ContentUrlError, match="this controller"):
            urls.check(url, [], CONTROLLER)
    # ... including a name that resolves to it.
    resolver = fake_resolver({"depot.example": ["198.51.100.20"], "198.51.100.20": ["198.51.100.20"]})
    with pytest.raises(urls.ContentUrlError, match="this controller"):
        urls.check("http://depot.example/x", [], "http://198.51.100.20", resolver=resolver)
