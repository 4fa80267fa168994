// The image library opened from the body editor's figure dialog ("Browse…").
// django-prose-editor listens through the CKEditor-style callback it installs on
// the opener; we hand back the address, alt text and caption, then close. An image
// just uploaded here (data-picked) is handed back at once.
(function () {
  "use strict";
  const picker = document.querySelector(".image-picker");
  if (!picker) return;

  function choose(choice) {
    const callback = picker.dataset.callback;
    const opener = window.opener;
    if (!opener || !opener.CKEDITOR || !callback) return;
    opener.CKEDITOR.tools.callFunction(Number(callback), choice.dataset.url, {
      id: choice.dataset.id,
      alternative_text: choice.dataset.alt,
      caption: choice.dataset.caption,
    });
    window.close();
  }

  document.addEventListener("click", (event) => {
    const choice = event.target.closest(".image-picker__choice");
    if (choice) choose(choice);
  });

  if (picker.dataset.picked) {
    const added = picker.querySelector(`.image-picker__choice[data-id="${picker.dataset.picked}"]`);
    if (added) choose(added);
  }
})();
