// The words for listening purposes, English and German: one table for every page (console,
// agent page, audit page), so a purpose reads the same wherever it is shown. Keys are
// `purpose.<id>` as the policy names them; an id missing here is shown as it is.

export const PURPOSES = {
  en: {
    "purpose.quality": "Quality assurance",
    "purpose.training": "Training",
    "purpose.coaching": "Coaching",
    "purpose.onboarding": "Onboarding",
    "purpose.complaint": "Complaint review",
    "purpose.compliance": "Compliance check",
    "purpose.escalation": "Escalation support",
    "purpose.fraud": "Fraud investigation",
  },
  de: {
    "purpose.quality": "Qualitätssicherung",
    "purpose.training": "Schulung",
    "purpose.coaching": "Coaching",
    "purpose.onboarding": "Einarbeitung",
    "purpose.complaint": "Beschwerdeprüfung",
    "purpose.compliance": "Compliance-Prüfung",
    "purpose.escalation": "Unterstützung bei Eskalation",
    "purpose.fraud": "Betrugsermittlung",
  },
};
