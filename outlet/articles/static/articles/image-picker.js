// The image library opened from the body editor's figure dialog ("Browse…").
// django-prose-editor listens through the CKEditor-style callback it installs on
// the opener; we hand back the address, alt text and caption, then close.
document.addEventListener("click", (event) => {
  const choice = event.target.closest(".image-picker__choice");
  if (!choice) return;
  const callback = document.querySelector(".image-picker").dataset.callback;
  const opener = window.opener;
  if (!opener || !opener.CKEDITOR || !callback) return;
  opener.CKEDITOR.tools.callFunction(Number(callback), choice.dataset.url, {
    id: choice.dataset.id,
    alternative_text: choice.dataset.alt,
    caption: choice.dataset.caption,
  });
  window.close();
});
