from django.contrib import admin

from .models import Appeal, Article, ArticleAuthor, Author, Section, Tag


@admin.register(Section)
class SectionAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "position"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Author)
class AuthorAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    search_fields = ["name"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    search_fields = ["name"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Appeal)
class AppealAdmin(admin.ModelAdmin):
    list_display = ["name", "heading", "is_default"]


class ArticleAuthorInline(admin.TabularInline):
    model = ArticleAuthor
    extra = 1
    autocomplete_fields = ["author"]


@admin.register(Article)
class ArticleAdmin(admin.ModelAdmin):
    list_display = ["headline", "section", "kind", "status", "publish_at"]
    list_filter = ["status", "kind", "section"]
    search_fields = ["headline", "dek"]
    prepopulated_fields = {"slug": ["headline"]}
    autocomplete_fields = ["tags"]
    inlines = [ArticleAuthorInline]
    date_hierarchy = "publish_at"
