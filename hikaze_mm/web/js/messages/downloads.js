// The Downloads page's strings (see i18n.js).

export default {
  "nav.downloads": "Downloads",
  "downloads.intro":
    "Models downloaded by URL, Civitai or Hugging Face source, or hash; each is verified by its SHA-256 while it is written and added to the library at once.",
  "downloads.formTitle": "Download a model",
  "downloads.source": "URL or hash",
  "downloads.sourceHint":
    "A Civitai page, civitai:VERSION, an AIR, hf:REPO/PATH, sha256:HASH, an AutoV2, or any https URL",
  "downloads.type": "Type (folder)",
  "downloads.typeAuto": "From the source",
  "downloads.sha256": "Expected SHA-256 (optional)",
  "downloads.start": "Download",
  "downloads.queued": "Queued {name}",
  "downloads.alreadyHave": "Already in the library: {name}",
  "downloads.queue": "Queue and history",
  "downloads.none": "No downloads yet.",
  "downloads.loadFailed": "The downloads could not be loaded: {error}",
  "downloads.pause": "Pause",
  "downloads.resume": "Resume",
  "downloads.cancel": "Cancel",
  "downloads.remove": "Remove",
  "downloads.actionFor": "{action} {name}",
  "downloads.actionFailed": "{action} failed",
  "downloads.progressOf": "Progress of {name}",
  "status.queued": "queued",
  "status.verifying": "verifying",
  "status.done": "done",
  "status.failed": "failed",
  "status.cancelled": "cancelled",
};
