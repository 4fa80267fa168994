// Forms on cached pages (the newsletter sign-up box) carry no CSRF token, so a shared
// cache can give every reader the same page. When a reader starts using such a form
// (form[data-csrf]), fetch a token from /csrf/ (uncached; it also sets the CSRF cookie)
// and add it to the form; a submit that comes first waits for it.
(function () {
  "use strict";
  var pending = null;

  function token() {
    if (!pending) {
      pending = fetch("/csrf/", {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (response) {
          if (!response.ok) { throw new Error("token " + response.status); }
          return response.json();
        })
        .then(function (body) { return body.token; })
        .catch(function (error) { pending = null; throw error; });
    }
    return pending;
  }

  function fill(form, value) {
    var input = form.querySelector("input[name=csrfmiddlewaretoken]");
    if (!input) {
      input = document.createElement("input");
      input.type = "hidden";
      input.name = "csrfmiddlewaretoken";
      form.appendChild(input);
    }
    input.value = value;
  }

  function formOf(target) {
    return target && target.closest ? target.closest("form[data-csrf]") : null;
  }

  document.addEventListener("focusin", function (event) {
    var form = formOf(event.target);
    if (form) { token().then(function (value) { fill(form, value); }, function () {}); }
  });

  function resubmit(form) {
    // Later, not in this task: a submit requested while the first one's event is still
    // being dispatched is ignored by the browser.
    window.setTimeout(function () {
      if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); }
    }, 0);
  }

  document.addEventListener("submit", function (event) {
    var form = formOf(event.target);
    var input = form && form.querySelector("input[name=csrfmiddlewaretoken]");
    if (!form || (input && input.value) || form.dataset.csrfTried === "1") { return; }
    event.preventDefault();
    form.dataset.csrfTried = "1";
    token().then(function (value) { fill(form, value); resubmit(form); },
                 function () { resubmit(form); });  // the server answers with its own page
  });
})();
