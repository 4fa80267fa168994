from django.contrib import admin

from .models import ImportedItem


@admin.register(ImportedItem)
class ImportedItemAdmin(admin.ModelAdmin):
    list_display = ["source", "kind", "source_id", "object_id", "location", "updated_at"]
    list_filter = ["source", "kind"]
    search_fields = ["source_id", "location"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
