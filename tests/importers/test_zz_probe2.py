import json, shutil
from io import StringIO
from pathlib import Path
import pytest
from django.core.management import call_command
from outlet.articles.models import Article, Author
from tests.importers.substack_export import EXPORT

pytestmark = pytest.mark.django_db
FIX = Path(__file__).parent / "fixtures"

def run(source, *args):
    out = StringIO()
    try:
        call_command("archive_import", source, *args, stdout=out)
    except BaseException as e:
        print("EXC", type(e), e)
    print(out.getvalue()[-2000:])

def test_ghost_nul(tmp_path):
    data = json.loads((FIX / "ghost-5.json").read_text())
    d = data["db"][0]["data"]
    d["posts_meta"][0]["meta_title"] = "Bad\u0000title"
    d["users"][0]["name"] = "Jane\u0000Doe"
    p = tmp_path / "g.json"; p.write_text(json.dumps(data))
    run("ghost", str(p))
    print("ARTICLES", Article.objects.count())

def test_substack_nul(tmp_path):
    export = tmp_path / "s"; shutil.copytree(EXPORT, export)
    csv = export / "posts.csv"
    csv.write_text(csv.read_text().replace("The night the river rose", "The night\x00 the river rose"))
    run("substack", str(export))
    print("ARTICLES", Article.objects.count())

def test_substack_authors(tmp_path):
    run("substack", str(EXPORT), "--author", "李明")
    print([(a.name, a.slug) for a in Author.objects.all()])
    run("substack", str(EXPORT), "--author", "王芳")
    print([(a.name, a.slug) for a in Author.objects.all()])
    print([(a.headline, [x.name for x in a.authors.all()]) for a in Article.objects.all()][:3])
