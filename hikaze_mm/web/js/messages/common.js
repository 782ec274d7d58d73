// The app's shared strings: header, navigation, common buttons, errors, formats, statuses. (see i18n.js)

export default {
  "app.title": "Hikaze Model Manager",
  "app.skip": "Skip to content",
  "nav.label": "Main",
  "nav.library": "Library",
  "nav.pending": "Pending review",
  "nav.migration": "Migration & scan",
  "header.models": "{n} models",
  "header.models.one": "{n} model",
  "header.pendingCount": "{n} pending models",
  "header.pendingCount.one": "{n} pending model",

  "common.cancel": "Cancel",
  "common.close": "Close",
  "common.delete": "Delete",
  "common.dismiss": "Dismiss",
  "common.loading": "Loading…",
  "common.next": "Next",
  "common.previous": "Previous",
  "common.refresh": "Refresh",
  "common.retry": "Retry",
  "common.save": "Save",
  "common.saving": "Saving…",

  "error.network": "Network error",
  "error.networkDetail": "the server did not answer; is it running?",

  "format.hm": "{h}h {m}m",
  "format.ms": "{m}m {s}s",
  "format.s": "{s}s",

  "status.new": "new",
  "status.hashing": "hashing",
  "status.error": "error",
  "status.conflict": "conflict",
  "status.missing": "missing",
  "status.running": "running",
  "status.paused": "paused",
  "status.completed": "completed",
  "status.idle": "idle",
  "status.other": "{_}",
};
