from django.contrib import admin

from .models import Redirect


@admin.register(Redirect)
class RedirectAdmin(admin.ModelAdmin):
    list_display = ["old_path", "target", "hits", "last_hit_at", "source"]
    search_fields = ["old_path", "target"]
    list_filter = ["source"]
    readonly_fields = ["hits", "last_hit_at", "created_at", "updated_at"]
