// The purpose dialog: before every listen the supervisor says why (a `<dialog>` with one
// select). It closes by itself when its call ends, so a purpose is never confirmed for a
// call that is gone.
//
// Callbacks: onConfirm(call, purpose) once a purpose is chosen and confirmed.

import { agentLabel } from "./rosterquery.js";

export class PurposeDialog {
  constructor({ dialog, form, callText, select, error, cancel, i18n, onConfirm }) {
    /** @type {HTMLDialogElement} */
    this.dialog = dialog;
    /** @type {HTMLFormElement} */
    this.form = form;
    /** @type {HTMLElement} */
    this.callText = callText;
    /** @type {HTMLSelectElement} */
    this.select = select;
    /** @type {HTMLElement} */
    this.error = error;
    /** @type {import("../shared/i18n.js").I18n} */
    this.i18n = i18n;
    /** @type {(call: object, purpose: string) => void} */
    this.onConfirm = onConfirm;
    this.call = null;
    this.returnFocus = null;
    this.purposes = [];
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const purpose = select.value;
      if (!purpose) {
        this._showError(true);
        select.focus();
        return;
      }
      const call = this.call;
      this.call = null;
      dialog.close();
      if (call) onConfirm(call, purpose);
    });
    select.addEventListener("change", () => this._showError(false));
    // A closed <select> does not submit its form on Enter; here it should.
    select.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    cancel.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => {
      if (this.call && this.returnFocus?.isConnected) this.returnFocus.focus();
      this.call = null;
    });
  }

  get isOpen() {
    return this.dialog.open;
  }

  open(call, button, purposes) {
    this.call = call;
    this.returnFocus = button;
    this.purposes = purposes;
    this.select.value = "";
    this.render();
    this._showError(false);
    this.dialog.showModal();
    this.select.focus();
  }

  close() {
    if (this.dialog.open) this.dialog.close();
  }

  /**
   * Close the dialog if its call is no longer running (`isRunning(callId)` false); returns
   * the agent's label when it did, so the page can say why.
   */
  closeIfGone(isRunning) {
    if (!this.dialog.open || !this.call || isRunning(this.call.call_id)) return null;
    const agent = agentLabel(this.call);
    const focus = this.returnFocus;
    this.call = null;
    this.dialog.close();
    focus?.isConnected && focus.focus();
    return agent;
  }

  /** Labels in the page's language (also after a language switch while open). */
  render() {
    if (!this.call) return;
    const select = this.select;
    const previous = select.value;
    const placeholder = new Option(this.i18n.t("dialog.choose"), "");
    placeholder.disabled = true;
    select.replaceChildren(placeholder);
    for (const purpose of this.purposes) select.append(new Option(this.i18n.label("purpose", purpose), purpose));
    if (this.purposes.length === 1) select.value = this.purposes[0];
    else select.value = this.purposes.includes(previous) ? previous : "";
    this.callText.textContent = this.i18n.t("dialog.call", { agent: agentLabel(this.call) });
  }

  _showError(show) {
    this.error.hidden = !show;
    if (show) this.select.setAttribute("aria-invalid", "true");
    else this.select.removeAttribute("aria-invalid");
  }
}
