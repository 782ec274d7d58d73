// Duplicates page: models found at several paths, the largest waste first.

import { h } from "../dom.js";
import { t } from "../i18n.js";

export function mountDuplicates(root) {
  root.append(
    h(
      "section",
      { class: "page page-duplicates", "aria-labelledby": "duplicates-title" },
      h("h1", { id: "duplicates-title" }, t("nav.duplicates")),
    ),
  );
  return {};
}
