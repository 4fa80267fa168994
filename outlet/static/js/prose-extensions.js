// The outlet's own extensions to the admin's rich-text editors (django-prose-editor),
// loaded as a module through DJANGO_PROSE_EDITOR_EXTENSIONS in settings.py.
import { Extension } from "django-prose-editor/editor";

// Tiptap injects its base rules as an inline <style>, which the CSP refuses (a console
// error on every editor page). The same rules are served from css/admin-prose.css.
export const NoInjectedStyles = Extension.create({
  name: "noInjectedStyles",
  onBeforeCreate() {
    this.editor.options.injectCSS = false;
  },
});

// After a figure is inserted the cursor sits in its caption, and Enter kept typing
// there: the next paragraph ended up in the caption. Enter in a figure now starts a
// paragraph below it.
export const FigureCaptionExit = Extension.create({
  name: "figureCaptionExit",
  priority: 1000,
  addKeyboardShortcuts() {
    return {
      Enter: ({ editor }) => {
        const { $from } = editor.state.selection;
        for (let depth = $from.depth; depth > 0; depth--) {
          if ($from.node(depth).type.name !== "figure") continue;
          const after = $from.after(depth);
          return editor
            .chain()
            .insertContentAt(after, { type: "paragraph" })
            .setTextSelection(after + 1)
            .scrollIntoView()
            .run();
        }
        return false;
      },
    };
  },
});
