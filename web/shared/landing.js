// Landing page (web/index.html): three destinations, in English and German.
// It lives in shared/ because the server serves only its page folders and shared/.

import { I18n } from "./i18n.js";

const STRINGS = {
  en: {
    "landing.title": "live · silent monitoring",
    "landing.heading": "Where do you want to go?",
    "landing.intro":
      "live lets quality supervisors listen to running calls, tells agents about it as your monitoring policy says, and keeps a verifiable record of every listening session.",
    "landing.console": "Supervisor console",
    "landing.consoleText": "See running calls and listen in for quality assurance or training.",
    "landing.agent": "Agent page",
    "landing.agentText": "See when your calls are listened to, and your monitoring notices.",
    "landing.audit": "Audit",
    "landing.auditText":
      "Check the tamper-evident record of listening sessions and export reports.",
    "landing.signin": "Sign in with your personal link",
  },
  de: {
    "landing.title": "live · Stilles Mithören",
    "landing.heading": "Wohin möchten Sie?",
    "landing.intro":
      "Mit live hören Qualitätsverantwortliche laufende Gespräche mit. Agentinnen und Agenten werden so informiert, wie es die Betriebsvereinbarung vorsieht, und jedes Mithören wird nachprüfbar protokolliert.",
    "landing.console": "Mithör-Konsole",
    "landing.consoleText":
      "Laufende Gespräche sehen und zur Qualitätssicherung oder Schulung mithören.",
    "landing.agent": "Seite für Agentinnen und Agenten",
    "landing.agentText": "Sehen, wann Ihre Gespräche mitgehört werden, und Ihre Hinweise lesen.",
    "landing.audit": "Prüfung",
    "landing.auditText":
      "Das manipulationssichere Protokoll der Mithör-Sitzungen prüfen und Berichte exportieren.",
    "landing.signin": "Mit Ihrem persönlichen Link anmelden",
  },
};

const i18n = new I18n(STRINGS);
i18n.mountSwitch(/** @type {HTMLElement} */ (document.getElementById("lang-switch")));
i18n.apply();
