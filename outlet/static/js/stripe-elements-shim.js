/* Development only (STRIPE_DIALECT=localstripe): Stripe.js's Payment Element calls over
 * localstripe, which knows only the old Card Element. Loaded after localstripe's own
 * Stripe.js stand-in and before donate.js, it wraps window.Stripe so that the page's one
 * script (the same donate.js production runs against real Stripe.js) finds:
 *
 *   stripe.elements({mode, amount, currency, ...}) / elements.update(...) / elements.submit()
 *   elements.create("payment")          card fields (labelled), a "test bank" method that
 *                                        behaves like a redirect method (iDEAL, Bancontact…),
 *                                        and a "test bank debit" that stays processing like a
 *                                        SEPA Direct Debit (its outcome comes later, by webhook)
 *   elements.create("expressCheckout")  a fake wallet button: click, then confirm, like
 *                                        Apple Pay / Google Pay, paying with a test card
 *   stripe.confirmPayment / confirmSetup / handleNextAction
 *
 * Confirmation posts to localstripe with the publishable key and the intent's client secret,
 * as Stripe.js does (outlet/core/localstripe_elements.py teaches localstripe to accept it);
 * localstripe's test cards decline or ask for 3-D Secure as they do on Stripe. */
(function () {
  "use strict";

  const gettext = window.gettext || (s => s);
  // localstripe serves its Stripe.js stand-in at <its address>/js.stripe.com/v3/.
  const served = document.querySelector('script[src*="/js.stripe.com/v3/"]');
  const API = served ? served.src.replace(/\/js\.stripe\.com\/v3\/$/, "") : "";
  const WALLET_CARD = {number: "4242424242424242", exp_month: "12", exp_year: "2034", cvc: "123"};
  const TEST_IBAN = "DE89370400440532013000";  // Stripe's SEPA test account
  const FIELDS = [
    {name: "number", label: gettext("Card number"), autocomplete: "cc-number", size: 19, inputmode: "numeric"},
    {name: "exp_month", label: gettext("Expiry month"), autocomplete: "cc-exp-month", size: 3, inputmode: "numeric", placeholder: "MM"},
    {name: "exp_year", label: gettext("Expiry year"), autocomplete: "cc-exp-year", size: 5, inputmode: "numeric", placeholder: "YY"},
    {name: "cvc", label: gettext("Security code"), autocomplete: "cc-csc", size: 4, inputmode: "numeric", placeholder: "CVC"},
    {name: "postal_code", label: gettext("Postcode"), autocomplete: "postal-code", size: 9, inputmode: "text"}
  ];
  const base = window.Stripe;
  if (typeof base !== "function") { return; }

  function element(tag, attributes, text) {
    const node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(key => node.setAttribute(key, attributes[key]));
    if (text) { node.textContent = text; }
    return node;
  }

  function emitter() {
    const listeners = {};
    return {
      on(event, handler) { (listeners[event] = listeners[event] || []).push(handler); return this; },
      off(event) { delete listeners[event]; return this; },
      emit(event, payload) { (listeners[event] || []).forEach(handler => handler(payload)); }
    };
  }

  function validationError(message, code) {
    return {error: {type: "validation_error", code: code, message: message}};
  }

  class PaymentElement {
    constructor(group) {
      Object.assign(this, emitter());
      this.group = group;
      this.inputs = {};
      this.method = "card";
    }
    mount(target) {
      const box = typeof target === "string" ? document.querySelector(target) : target;
      const methods = element("div", {"class": "shim-methods", role: "radiogroup", "aria-label": gettext("Payment method")});
      [["card", gettext("Card")], ["test_bank", gettext("Test bank (redirects, like iDEAL)")], ["test_bank_debit", gettext("Test bank debit (settles later, like SEPA)")]].forEach(([value, text]) => {
        const label = element("label", {"class": "shim-method"});
        const radio = element("input", {type: "radio", name: "shim-method", value: value});
        radio.checked = value === "card";
        radio.addEventListener("change", () => { this.method = value; cards.hidden = value !== "card"; this.emit("change", {complete: this.complete(), value: {type: value}}); });
        label.append(radio, " ", text);
        methods.appendChild(label);
      });
      const cards = element("div", {"class": "shim-card"});
      FIELDS.forEach(field => {
        const id = "shim-" + field.name;
        const wrap = element("span", {"class": "shim-field"});
        const input = element("input", {id: id, type: "text", autocomplete: field.autocomplete, size: String(field.size), inputmode: field.inputmode, placeholder: field.placeholder || field.label});
        input.addEventListener("input", () => this.emit("change", {complete: this.complete(), empty: false, value: {type: this.method}}));
        wrap.append(element("label", {"for": id, "class": "shim-label"}, field.label), input);
        cards.appendChild(wrap);
        this.inputs[field.name] = input;
      });
      box.append(methods, cards);
      window.setTimeout(() => this.emit("ready", {elementType: "payment"}), 0);
    }
    card() {
      const value = name => (this.inputs[name].value || "").replace(/\s/g, "");
      const year = value("exp_year");
      return {number: value("number"), exp_month: value("exp_month"), exp_year: year.length === 2 ? "20" + year : year, cvc: value("cvc")};
    }
    complete() {
      if (this.method !== "card") { return true; }
      const card = this.card();
      return card.number.length === 16 && card.exp_month && card.exp_year.length === 4 && card.cvc.length === 3;
    }
    focus() { (this.inputs.number || {focus() {}}).focus(); }
  }

  class ExpressCheckoutElement {
    constructor(group) {
      Object.assign(this, emitter());
      this.group = group;
    }
    mount(target) {
      const box = typeof target === "string" ? document.querySelector(target) : target;
      const button = element("button", {type: "button", "class": "shim-wallet"}, gettext("Pay with test wallet"));
      button.addEventListener("click", () => {
        let resolved = false;
        this.emit("click", {expressPaymentType: "test_wallet", resolve: () => { resolved = true; }, reject: () => {}});
        window.setTimeout(() => {
          if (!resolved) { return; }
          // The wallet sheet "approves" at once with a card that just works.
          this.group.wallet = WALLET_CARD;
          this.emit("confirm", {expressPaymentType: "test_wallet", billingDetails: {name: "Test Wallet"}, paymentFailed: () => { this.group.wallet = null; }});
        }, 0);
      });
      box.appendChild(button);
      window.setTimeout(() => this.emit("ready", {availablePaymentMethods: {testWallet: true}}), 0);
    }
  }

  class Elements {
    constructor(options) {
      this.options = Object.assign({}, options);
      this.payment = null;
      this.wallet = null;
    }
    create(type) {
      if (type === "payment") { this.payment = new PaymentElement(this); return this.payment; }
      if (type === "expressCheckout") { return new ExpressCheckoutElement(this); }
      throw new Error("The shim has no " + type + " element.");
    }
    getElement(type) { return type === "payment" ? this.payment : null; }
    update(options) { Object.assign(this.options, options); }
    async submit() {
      if (this.wallet || !this.payment || this.payment.method !== "card") { return {}; }
      const card = this.payment.card();
      if (card.number.length !== 16) { return validationError(gettext("Your card number is incomplete."), "incomplete_number"); }
      if (!card.exp_month || card.exp_year.length !== 4) { return validationError(gettext("Your card's expiration date is incomplete."), "incomplete_expiry"); }
      if (card.cvc.length !== 3) { return validationError(gettext("Your card's security code is incomplete."), "incomplete_cvc"); }
      return {};
    }
    methodData(billing) {
      if (!this.wallet && this.payment && this.payment.method === "test_bank_debit") {
        return {type: "sepa_debit", sepa_debit: {iban: TEST_IBAN}, billing_details: billing || {}};
      }
      const card = this.wallet || (this.payment.method === "card" ? this.payment.card() : WALLET_CARD);
      return {type: "card", card: card, billing_details: billing || {}};
    }
  }

  async function post(path, body) {
    try {
      const response = await fetch(API + path, {method: "POST", body: JSON.stringify(body)});
      const answer = await response.json().catch(() => ({}));
      if (response.status !== 200 || answer.error) { return {error: answer.error || {type: "api_error", message: "localstripe " + response.status}}; }
      return {object: answer};
    } catch (error) {
      return {error: {type: "api_connection_error", message: String(error)}};
    }
  }

  function intentId(clientSecret) { return (clientSecret.match(/^((?:pi|seti)_\w+)_secret_/) || [])[1]; }

  window.Stripe = function (key, stripeOptions) {
    const stripe = base(key, stripeOptions);
    const open = window.openModal;

    async function authenticate(clientSecret) {
      const approved = await open("3D Secure\nDo you want to confirm or cancel?", "Complete authentication", "Fail authentication");
      const id = intentId(clientSecret);
      const done = await post(`/v1/payment_intents/${id}/_authenticate?success=${approved}`, {key: key, client_secret: clientSecret});
      if (done.error) { return {error: done.error}; }
      if (done.object.status === "requires_payment_method") {
        return {error: {type: "card_error", code: "payment_intent_authentication_failure", message: "The provided PaymentMethod has failed authentication."}, paymentIntent: done.object};
      }
      return {paymentIntent: done.object};
    }

    stripe.elements = options => new Elements(options);

    stripe.confirmPayment = async ({elements, clientSecret, confirmParams, redirect}) => {
      const params = confirmParams || {};
      const redirecting = elements.payment && elements.payment.method === "test_bank" && !elements.wallet;
      const id = intentId(clientSecret);
      const confirmed = await post(`/v1/payment_intents/${id}/confirm`, {
        key: key, client_secret: clientSecret, return_url: params.return_url,
        payment_method_data: elements.methodData((params.payment_method_data || {}).billing_details)
      });
      elements.wallet = null;
      if (confirmed.error) { return {error: confirmed.error}; }
      let result = {paymentIntent: confirmed.object};
      if (confirmed.object.status === "requires_action") { result = await authenticate(clientSecret); }
      if (!result.error && (redirecting || redirect === "always")) {
        // A redirect method: the bank's page, then Stripe sends the reader to return_url.
        const back = new URL(params.return_url, window.location.href);
        back.searchParams.set("payment_intent", id);
        back.searchParams.set("payment_intent_client_secret", clientSecret);
        back.searchParams.set("redirect_status", result.paymentIntent.status === "succeeded" ? "succeeded" : "failed");
        window.location.assign(back.toString());
        return new Promise(() => {});  // the page is leaving, as with Stripe.js
      }
      return result;
    };

    stripe.confirmSetup = async ({elements, clientSecret, confirmParams}) => {
      const data = elements.methodData(((confirmParams || {}).payment_method_data || {}).billing_details);
      elements.wallet = null;
      const answer = await stripe.confirmCardSetup(clientSecret, {payment_method: {card: data.card, billing_details: data.billing_details}});
      if (answer.error) { return {error: Object.assign({type: "card_error"}, answer.error)}; }
      return answer;
    };

    stripe.handleNextAction = async ({clientSecret}) => authenticate(clientSecret);
    return stripe;
  };
})();
