/* Development only (STRIPE_DIALECT=localstripe): localstripe's stand-in for Stripe's card
 * Element is five bare inputs in our page, named by field ("exp_", "postal_c" once cut off)
 * and taking "20" + the year as typed (a four-digit year became "202030" and Stripe's
 * "Bad request"). Give each a label, a placeholder that fits, and take a four-digit year.
 * Stripe's real Element is an iframe of its own and is left alone. */
(function () {
  "use strict";

  var FIELDS = {
    number: {label: "Card number", placeholder: "Card number", size: 19, autocomplete: "cc-number"},
    exp_month: {label: "Expiry month", placeholder: "MM", size: 3, autocomplete: "cc-exp-month"},
    exp_year: {label: "Expiry year", placeholder: "YY", size: 5, autocomplete: "cc-exp-year"},
    cvc: {label: "Security code", placeholder: "CVC", size: 4, autocomplete: "cc-csc"},
    postal_code: {label: "Postcode", placeholder: "Postcode", size: 9, autocomplete: "postal-code"}
  };

  function yearShorten(event) {
    var input = event.target;
    var digits = input.value.replace(/\D/g, "");
    // localstripe sends "20" + what is typed: a four-digit year keeps its last two digits.
    if (digits.length === 4 && digits.slice(0, 2) === "20") {
      input.value = digits.slice(2);
      input.dispatchEvent(new Event("input", {bubbles: true}));
    }
  }

  function dress(container) {
    container.querySelectorAll("input[placeholder]").forEach(function (input) {
      var field = FIELDS[input.getAttribute("placeholder")];
      if (!field) { return; }
      input.setAttribute("aria-label", field.label);
      input.setAttribute("placeholder", field.placeholder);
      input.setAttribute("size", String(field.size));
      input.setAttribute("autocomplete", field.autocomplete);
      input.setAttribute("inputmode", field === FIELDS.postal_code ? "text" : "numeric");
      if (field === FIELDS.exp_year) { input.addEventListener("input", yearShorten); }
    });
  }

  document.querySelectorAll(".card-element").forEach(function (container) {
    new MutationObserver(function () { dress(container); }).observe(container, {childList: true});
  });
})();
