# Varnish in front of outlet's gunicorn: caches anonymous reader pages, purges them by
# surrogate key (the xkey vmod from Debian's varnish-modules), serves stale pages while
# the origin is down. Needs Varnish 7 and varnish-modules; see docs/edge-cache.md.
#
#   varnishd -a :80 -a purge=10.0.0.5:6091 -f /etc/varnish/outlet.vcl -s malloc,1G
#
# (`-a :6086,PROXY` instead of `:80` behind a TLS terminator; see docs/edge-cache.md.)
#
# outlet sends, on every reader page (articles/edge.py):
#   Cache-Control: public, max-age=0, s-maxage=N, stale-while-revalidate=W, stale-if-error=E
#   xkey: site article-12 section-3 tag-5 author-7 ...
# and purges with `PURGE /` + `xkey-purge: article-12 home ...` (core/purgers.py,
# EDGE_PURGER=varnish, EDGE_PURGE_URLS=http://this-varnish/).
vcl 4.1;

import std;
import xkey;

# The origin: gunicorn. The probe asks for a page that needs neither the database nor a
# worker, so "sick" means the web process is gone, not that a worker is late; a sick
# origin is not even tried for a page still in grace.
backend origin {
    .host = "127.0.0.1";
    .port = "8000";
    .connect_timeout = 1s;
    .first_byte_timeout = 30s;
    .probe = {
        .url = "/robots.txt";
        .interval = 1s;
        .timeout = 1s;
        .window = 3;
        .threshold = 2;
    }
}

# Who may purge: the web and worker machines (the purge task runs in a Celery worker),
# and only on the listen address named `purge` (`-a purge=10.0.0.5:6091`), one the TLS
# terminator never forwards to. An ACL alone is not enough: a terminator on the same
# host makes every reader's request come from 127.0.0.1.
acl purgers {
    "127.0.0.1";
    "::1";
}

sub vcl_recv {
    # outlet trusts no forwarded host (USE_X_FORWARDED_HOST is off, links come from
    # SITE_URL); dropped here as well, so a poisoned one reaches no origin behind us.
    unset req.http.X-Forwarded-Host;
    if (req.method == "PURGE") {
        if (local.socket != "purge" || client.ip !~ purgers) {
            return (synth(403, "Not allowed to purge"));
        }
        if (!req.http.xkey-purge) {
            return (synth(400, "PURGE needs an xkey-purge header"));
        }
        set req.http.n-gone = xkey.purge(req.http.xkey-purge);
        return (synth(200, "Purged " + req.http.n-gone + " objects"));
    }
    # Prometheus asks each web process directly, never through the shared cache: from
    # here every reader would look like 127.0.0.1 to outlet's METRICS_ALLOW. Matched as
    # the origin will read the path once decoded: any letter percent-encoded
    # (/%6detrics), in either case, after repeated slashes, with a trailing slash.
    if (req.url ~ "(?i)^(/|%2f)+(m|%6d)(e|%65)(t|%74)(r|%72)(i|%69)(c|%63)(s|%73)(/|%2f)*(\?|;|#|%3f|%23|%00|$)") {
        return (synth(404, "Not Found"));
    }
    if (req.method != "GET" && req.method != "HEAD") {
        return (pass);  # sign-ups, donations, webhooks, the admin's forms
    }
    # Never from the cache: the editors' side, forms' own pages, tokens, health, previews,
    # and the reader account (its session cookie is scoped to /account/, so it never
    # reaches, nor makes private, the reader pages below).
    if (req.url ~ "^/(admin|account|donate|newsletter|csrf|anymail|_outbox|healthz|preview|share)(/|$)") {
        return (pass);
    }
    # Staff and readers with a session or a flash message get their own page.
    if (req.http.Authorization || req.http.Cookie ~ "(^|;\s*)(sessionid|messages)=") {
        return (pass);
    }
    # Any other cookie (the CSRF cookie, analytics) never changes a reader page.
    unset req.http.Cookie;
    # One copy per page, not per campaign link: drop tracking parameters (keep in step
    # with articles/edge.py TRACKING_PARAMETERS, which the origin's own cache drops)
    # and sort the rest. Only here, for what is looked up in the cache: the donation
    # form, passed above, reads utm_* to credit a gift to its campaign.
    if (req.url ~ "\?") {
        set req.url = regsuball(req.url,
            "(?<=[?&])(utm_[A-Za-z_]+|fbclid|gclid|gbraid|wbraid|dclid|msclkid|mc_cid|mc_eid|_ga|_gl|igshid|yclid|twclid)(=[^&]*)?(&|$)",
            "");
        set req.url = regsub(req.url, "[?&]$", "");
        set req.url = std.querysort(req.url);
    }
    # Every request may use the page's full grace (stale-if-error): an expired page is
    # served once more while it is refreshed in the background, and kept when that
    # refresh fails (vcl_backend_response, vcl_backend_error). Not limited to
    # stale-while-revalidate while the probe is healthy: a database outage leaves
    # gunicorn answering the probe and 500 to everything else, and a foreground fetch
    # would hand readers that 500. Edits do not wait for expiry: they purge.
    return (hash);
}

sub vcl_backend_response {
    # Only pages outlet names with keys (reader pages), static files and uploads are kept: a 404 or
    # a page without keys would otherwise sit here for default_ttl after a change.
    # First: an origin error while refreshing in the background keeps the stale copy
    # (outlet's 500s carry no keys, so the rule below would otherwise replace it).
    if (beresp.status >= 500 && bereq.is_bgfetch) {
        return (abandon);
    }
    if (!beresp.http.xkey && bereq.url !~ "^/(static|media)/") {
        set beresp.uncacheable = true;
        return (deliver);
    }
    # Keep pages past their TTL for as long as stale-if-error allows; vcl_recv limits how
    # much of that grace is used while the origin is healthy.
    if (beresp.http.Cache-Control ~ "stale-if-error=[0-9]+") {
        set beresp.grace = std.duration(
            regsub(beresp.http.Cache-Control, "^.*stale-if-error=([0-9]+).*$", "\1s"), 0s);
    }
}

sub vcl_backend_error {
    # A background refresh that cannot reach the origin keeps the stale copy.
    if (bereq.is_bgfetch) {
        return (abandon);
    }
    # The origin is unreachable and no stale copy was left: a plain, short answer.
    set beresp.http.Content-Type = "text/plain; charset=utf-8";
    set beresp.http.Retry-After = "5";
    set beresp.body = "The site is busy. Please try again in a moment.";
    return (deliver);
}

sub vcl_deliver {
    unset resp.http.xkey;  # the keys are for this cache only
    if (obj.hits > 0) {
        set resp.http.X-Cache = "hit";
        # The cached copy carries the X-Request-ID of the request that filled it (maybe
        # one its client chose): a hit answers with this request's own id instead, the
        # proxy's in front when sane (outlet/core/logs/request_id.py's rule), else ours.
        if (req.http.X-Request-ID ~ "^[A-Za-z0-9][A-Za-z0-9._:=+-]{0,127}$") {
            set resp.http.X-Request-ID = req.http.X-Request-ID;
        } else {
            set resp.http.X-Request-ID = "varnish-" + req.xid;
        }
    } else {
        set resp.http.X-Cache = "miss";
    }
}
