"""Make a DKIM key: the private half to a file (0600), the public half as a DNS record."""

from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from outlet.core.dkim import dkim_key_generate


class Command(BaseCommand):
    help = (
        "Generate a DKIM private key into a new file (mode 0600) and print the DNS TXT "
        "record to publish and the settings that turn signing on."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--selector",
            default="",
            help="DNS selector (default: DKIM_SELECTOR, else outlet<yyyymm>).",
        )
        parser.add_argument(
            "--domain",
            default="",
            help="Signing domain, d= (default: DKIM_DOMAIN, else SITE_URL's host).",
        )
        kind = parser.add_mutually_exclusive_group()
        kind.add_argument("--bits", type=int, choices=(2048, 3072, 4096), default=2048)
        kind.add_argument(
            "--ed25519",
            action="store_true",
            help="An Ed25519 key (RFC 8463); not every receiver verifies these yet.",
        )
        parser.add_argument(
            "--output",
            default="",
            help="Private key file to create (default: <OUTLET_VAR_DIR>/dkim-<selector>.pem).",
        )

    def handle(self, *args, **options):
        selector = options["selector"] or settings.DKIM_SELECTOR or f"outlet{date.today():%Y%m}"
        domain = (
            options["domain"]
            or settings.DKIM_DOMAIN
            or urlsplit(settings.SITE_URL).hostname
            or "localhost"
        )
        path = Path(options["output"] or settings.VAR_DIR / f"dkim-{selector}.pem")
        try:
            key = dkim_key_generate(
                selector=selector,
                domain=domain,
                path=path,
                bits=options["bits"],
                ed25519_key=options["ed25519"],
            )
        except FileExistsError:
            raise CommandError(
                f"{path} exists; a key in use must not be overwritten. Choose another "
                "--output or --selector (a new selector lets old and new keys overlap)."
            ) from None
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        except OSError as exc:
            raise CommandError(f"Cannot create {path}: {exc.strerror}") from None
        self.stderr.write(f"Private key written to {path} (mode 0600).")
        self.stderr.write("Publish this DNS record, then set the environment below:")
        self.stdout.write(key.dns_record())
        self.stderr.write(
            f"DKIM_SELECTOR={selector}\nDKIM_DOMAIN={domain}\nDKIM_PRIVATE_KEY_FILE={path.resolve()}"
        )
