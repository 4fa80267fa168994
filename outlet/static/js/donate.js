/* The donation form and the card update form: Stripe's Payment Element (and, above the
 * donation form, the Express Checkout Element's wallet buttons), with the intent created by
 * our server only when the reader submits. Payment details go from the browser to Stripe
 * only (confirmPayment, confirmSetup); our server records a payment only when Stripe says
 * it succeeded. The same file runs on localstripe, where a development shim
 * (stripe-elements-shim.js) stands in for Stripe.js's elements. */
(function () {
  "use strict";

  // The page's words, translated by the server ({% donate_messages %}); English if absent.
  var WORDS = (function () {
    var block = document.getElementById("donate-messages");
    try { return block ? JSON.parse(block.textContent) : {}; } catch (e) { return {}; }
  })();
  function t(key, fallback) { return WORDS[key] || fallback; }
  var DECLINED = t("declined", "Your card was declined. Please check the details or try another card; nothing was charged.");
  var AUTH_FAILED = t("auth_failed", "Your bank could not confirm this payment. Please try again or use another card; nothing was charged.");
  var MALFORMED = t("malformed", "The card details could not be read. Please check the card number, the expiry month and year and the security code, then try again; nothing was charged.");
  var NETWORK = t("network", "We could not reach the payment service. Please check your connection and try again; nothing was charged.");
  // Once a charge or a check of it has been sent, the answer may be lost after Stripe charged.
  var REFUSED = t("refused", "This page's security check failed, so nothing was charged. Please reload the page and try again.");
  var UNCERTAIN = t("uncertain", "We could not confirm your payment yet. Please do not start a new donation: we are checking again. If it went through, your receipt is on its way by email.");
  var CHECK_TRIES = 3;
  var CHECK_DELAY_MS = 2000;

  function checkoutKeyMake() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") { return window.crypto.randomUUID(); }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function readableError(error) {
    if (!error) { return NETWORK; }
    var code = error.code || error.decline_code || "";
    var text = (error.message || "").toLowerCase();
    if (code === "card_declined" || text.indexOf("declined") !== -1) { return DECLINED; }
    if (text.indexOf("authenticat") !== -1 || code === "payment_intent_authentication_failure" ||
        code === "setup_intent_authentication_failure") { return AUTH_FAILED; }
    if (code === "incorrect_number" || code === "invalid_number") { return t("number", "The card number looks wrong. Please check it."); }
    if (code === "expired_card") { return t("expired", "This card has expired. Please use another card."); }
    if (code === "incorrect_cvc" || code === "invalid_cvc") { return t("cvc", "The security code looks wrong. Please check it."); }
    // Stripe.js's own checks and card errors are written for people; a request Stripe
    // refused as malformed ("Bad request", invalid_request_error) is not. Anything else (a
    // lost connection, a fault at Stripe) is not the card details' doing.
    if (error.type === "card_error" || error.type === "validation_error") { return error.message || DECLINED; }
    if (error.type === "invalid_request_error") { return MALFORMED; }
    return NETWORK;
  }

  /* POST and read the JSON answer. A lost or unreadable answer is `uncertain` when the
   * request may have charged (`charging`), else a plain network error. */
  function post(url, data, csrf, charging) {
    var body = data instanceof FormData ? data : new URLSearchParams(data);
    var lost = charging ? {action: "uncertain", message: UNCERTAIN} : {action: "error", message: NETWORK};
    return fetch(url, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: {"X-CSRFToken": csrf, "Accept": "application/json"}
    }).then(function (response) {
      // A 403 that is not our JSON is Django's CSRF refusal: the view never ran.
      var unreadable = response.status === 403 ? {action: "error", message: REFUSED} : lost;
      return response.json().catch(function () { return unreadable; });
    }, function () { return lost; });
  }

  function showStatus(box, text, kind) {
    box.textContent = text;
    box.className = "donate__status donate__status--" + (kind || "error");
    box.hidden = !text;
  }

  function mountElements(form, status, options) {
    if (typeof window.Stripe !== "function") {
      showStatus(status, t("no_card_form", "The card form could not load. Please check your connection or disable a blocker for this page, then reload."));
      return null;
    }
    // Stripe's own words (the Payment Element's labels and errors) in the page's language.
    var stripe = window.Stripe(form.dataset.stripeKey, form.dataset.locale ? {locale: form.dataset.locale} : undefined);
    var methods = (form.dataset.paymentMethodTypes || "").split(",").filter(Boolean);
    if (methods.length) { options.paymentMethodTypes = methods; }
    if (form.dataset.paymentMethodConfiguration) { options.paymentMethodConfiguration = form.dataset.paymentMethodConfiguration; }
    var elements = stripe.elements(options);
    var payment = elements.create("payment", {layout: "tabs"});
    payment.mount("#payment-element");
    return {stripe: stripe, elements: elements, payment: payment};
  }

  function setupDonateForm(form) {
    var status = document.getElementById("donate-status");
    var submit = document.getElementById("donate-submit");
    var csrf = form.querySelector("[name=csrfmiddlewaretoken]").value;
    var customField = document.getElementById("custom-amount-field");
    var customInput = form.querySelector("[name=custom_amount]");
    var feeLabel = document.getElementById("fee-amount");
    var publicCredit = form.querySelector("[name=public_credit]");
    var publicName = document.getElementById("public-name-field");
    var feePercent = parseFloat(form.dataset.feePercent) || 0;
    var feeFixed = parseInt(form.dataset.feeFixed, 10) || 0;
    var label = submit.textContent;
    var onAmount = null;
    // Amounts are in Stripe's minor units; the page says how many digits those have in the
    // site's currency (0 for yen, 2 for dollars, 3 for dinars: outlet/donations/currencies.py),
    // how many decimals a person types, and the minor units a charge must be a multiple of.
    var exponent = parseInt(form.dataset.exponent, 10) || 0;
    var places = parseInt(form.dataset.places, 10) || 0;
    var step = parseInt(form.dataset.step, 10) || 1;
    var shown = parseInt(form.dataset.displayPlaces, 10) || 0;
    var unit = Math.pow(10, exponent);
    var money = new Intl.NumberFormat(document.documentElement.lang || undefined, {
      style: "currency", currency: (form.dataset.currency || "usd").toUpperCase(),
      minimumFractionDigits: shown, maximumFractionDigits: shown
    });
    function moneyText(minor) { return money.format(minor / unit); }

    function chosenAmount() {
      var choice = form.querySelector("[name=amount_choice]:checked");
      if (!choice) { return 0; }
      if (choice.value === "other") {
        var typed = (customInput.value || "").trim();
        // More decimals than the currency has: no amount (the server says what to type).
        var decimals = typed.indexOf(".") === -1 ? 0 : typed.length - typed.indexOf(".") - 1;
        if (!typed || decimals > places) { return 0; }
        return Math.round(parseFloat(typed) * unit) || 0;
      }
      return parseInt(choice.value, 10);
    }
    function giveLabel(total) {
      var f = form.querySelector("[name=frequency]:checked");
      var key = f && f.value === "month" ? "give_month" : f && f.value === "year" ? "give_year" : "give";
      var english = {give: "Give %(amount)s", give_month: "Give %(amount)s monthly", give_year: "Give %(amount)s yearly"};
      return t(key, english[key]).replace("%(amount)s", moneyText(total));
    }
    function refresh() {
      var choice = form.querySelector("[name=amount_choice]:checked");
      customField.hidden = !(choice && choice.value === "other");
      publicName.hidden = !publicCredit.checked;
      var amount = chosenAmount();
      // The same figure as services.donation_fee_compute: the total rounded up to a chargeable step.
      var gross = Math.ceil((amount + feeFixed) / (1 - feePercent / 100));
      var fee = amount ? Math.ceil(gross / step) * step - amount : 0;
      feeLabel.textContent = amount ? moneyText(fee) : t("a_little", "a little");
      var cover = form.querySelector("[name=cover_fee]").checked;
      var total = amount + (cover ? fee : 0);
      submit.textContent = total ? giveLabel(total) : label;
      if (onAmount) { onAmount(total); }
    }
    form.addEventListener("change", refresh);
    form.addEventListener("input", refresh);
    refresh();

    function frequency() {
      var f = form.querySelector("[name=frequency]:checked");
      return f ? f.value : "once";
    }
    function elementsMode() { return frequency() === "once" ? "payment" : "subscription"; }
    // The Payment Element needs an amount before the reader has chosen one: the smallest gift.
    var lastAmount = parseInt(form.dataset.minAmount, 10) || 100;
    var parts = mountElements(form, status, {
      mode: elementsMode(),
      amount: chosenAmount() || lastAmount,
      currency: (form.dataset.currency || "usd").toLowerCase()
    });
    if (!parts) { return; }
    onAmount = function (total) {
      if (total) { lastAmount = total; }
      parts.elements.update({mode: elementsMode(), amount: total || lastAmount});
    };
    refresh();
    submit.disabled = false;

    function clearFieldErrors() {
      form.querySelectorAll("[data-errors-for]").forEach(function (list) { list.textContent = ""; });
    }
    function showFieldErrors(fields) {
      Object.keys(fields || {}).forEach(function (name) {
        var list = form.querySelector('[data-errors-for="' + name + '"]') ||
                   form.querySelector('[data-errors-for="custom_amount"]');
        fields[name].forEach(function (text) {
          var item = document.createElement("li");
          item.textContent = text;
          list.appendChild(item);
        });
      });
    }
    var keyField = form.querySelector("[name=checkout_key]");
    keyField.value = checkoutKeyMake();
    var nameField = form.querySelector("[name=name]");
    var emailField = form.querySelector("[name=email]");
    // After an uncertain answer: the one request to repeat (same token, so the server reads
    // the same payment). A new checkout is never started then.
    var pending = null;
    var checks = 0;
    var busy = false;

    function ask(request) { return post(request.url, request.data, csrf, true); }

    function finish(result) {
      busy = false;
      if (result.action === "done" && result.redirect) {
        pending = null;
        showStatus(status, t("finishing", "Thank you! Finishing up…"), "info");
        window.location.assign(result.redirect);
        return;
      }
      if (result.action === "uncertain" && pending) {
        showStatus(status, result.message || UNCERTAIN, "info");
        if (checks < CHECK_TRIES) {
          checks += 1;
          window.setTimeout(function () { ask(pending).then(finish, uncertainFinish); }, CHECK_DELAY_MS);
          return;
        }
        submit.disabled = false;
        submit.textContent = t("check_again", "Check again");
        return;
      }
      if (result.action === "resume") {
        showStatus(status, result.message || UNCERTAIN, "info");
        submit.disabled = false;
        submit.textContent = t("check_again", "Check again");
        return;
      }
      // A definite answer: no payment is in flight, so the next submit is a new checkout.
      pending = null;
      keyField.value = checkoutKeyMake();
      showStatus(status, result.message || NETWORK);
      submit.disabled = false;
      refresh();
    }
    function uncertainFinish() { finish({action: "uncertain", message: UNCERTAIN}); }

    /* elements.submit() checks the details in the browser; only then does our server record
     * the donation and create the payment, which the browser confirms (3-D Secure, a wallet,
     * or a bank's page and back to return_url); then the server reads it from Stripe. */
    function pay(wallet) {
      busy = true;
      clearFieldErrors();
      submit.disabled = true;
      if (pending) {
        checks = 0;
        submit.textContent = t("checking", "Checking…");
        ask(pending).then(finish, uncertainFinish);
        return;
      }
      showStatus(status, "");
      submit.textContent = t("processing", "Processing…");
      var confirmError = null;
      parts.elements.submit().then(function (checked) {
        if (checked.error) { return {action: "failed", message: readableError(checked.error)}; }
        return post(form.dataset.intentUrl, new FormData(form), csrf, false).then(function (started) {
          if (started.action === "uncertain") {
            // Stripe may have made the payment object: the next submit sends this same
            // checkout again (same key), which finds it instead of making another.
            return {action: "resume", message: started.message};
          }
          if (started.action !== "confirm") {
            showFieldErrors(started.fields);
            return started;
          }
          pending = {url: form.dataset.refreshUrl, data: {token: started.token}};
          return parts.stripe.confirmPayment({
            elements: parts.elements,
            clientSecret: started.client_secret,
            confirmParams: {
              return_url: started.return_url,
              payment_method_data: {billing_details: {name: nameField.value, email: emailField.value}}
            },
            redirect: "if_required"
          }).then(function (confirmed) {
            confirmError = confirmed.error || null;
            if (confirmError && wallet) { wallet.paymentFailed({reason: "fail"}); }
            // Whatever the browser says, the server asks Stripe.
            return ask(pending);
          }, function () { return ask(pending); });
        });
      }).then(function (answer) {
        if (answer.action === "failed" && confirmError) {
          answer.message = readableError(confirmError);
        }
        finish(answer);
      }, function () {
        finish(pending ? {action: "uncertain", message: UNCERTAIN} : {action: "error", message: NETWORK});
      });
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (!busy) { pay(null); }
    });

    // Wallet buttons (Apple Pay, Google Pay, Link) above the form, for one-time and
    // recurring gifts alike; the wallet gives the name and email when the form has none.
    var expressBox = document.getElementById("express-checkout");
    if (expressBox) {
      var express = parts.elements.create("expressCheckout", {buttonType: {applePay: "donate", googlePay: "donate"}});
      express.on("ready", function (event) {
        var offered = event && event.availablePaymentMethods;
        expressBox.hidden = !offered || !Object.keys(offered).some(function (k) { return offered[k]; });
      });
      express.on("click", function (event) {
        if (busy) { return; }
        event.resolve({emailRequired: !emailField.value, billingAddressRequired: false});
      });
      express.on("confirm", function (event) {
        var details = event.billingDetails || {};
        if (!nameField.value && details.name) { nameField.value = details.name; }
        if (!emailField.value && details.email) { emailField.value = details.email; }
        pay(event);
      });
      express.mount("#express-checkout-element");
    }
  }

  /* The reader account: a recurring gift's new payment method, saved by the Payment
   * Element in setup mode, then made the gift's default by our server. */
  function setupCardUpdate(form) {
    var status = document.getElementById("card-status");
    var submit = form.querySelector("button[type=submit]");
    var csrf = form.querySelector("[name=csrfmiddlewaretoken]").value;
    var parts = mountElements(form, status, {mode: "setup", currency: (form.dataset.currency || "usd").toLowerCase()});
    if (!parts) { return; }
    submit.disabled = false;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      submit.disabled = true;
      showStatus(status, "");
      parts.elements.submit().then(function (checked) {
        if (checked.error) { return {action: "failed", message: readableError(checked.error)}; }
        return post(form.action, {}, csrf).then(function (started) {
          if (started.action !== "setup") { return started; }
          return parts.stripe.confirmSetup({
            elements: parts.elements,
            clientSecret: started.client_secret,
            confirmParams: {return_url: window.location.href},
            redirect: "if_required"
          }).then(function (setup) {
            if (setup.error) { return {action: "failed", message: readableError(setup.error)}; }
            return post(form.dataset.confirmUrl, {setup_intent: setup.setupIntent.id}, csrf);
          });
        });
      }).then(function (result) {
        if (result.action === "done") { window.location.assign(result.redirect); return; }
        showStatus(status, result.message || NETWORK);
        submit.disabled = false;
      });
    });
  }

  var donateForm = document.getElementById("donate-form");
  if (donateForm) { setupDonateForm(donateForm); }
  var cardForm = document.getElementById("card-update-form");
  if (cardForm) { setupCardUpdate(cardForm); }
})();
