// Hikaze Model Manager inside ComfyUI: the entry point (the only module here with side
// effects; ComfyUI imports every .js file of this folder, the others only export).
//
// - a "Models" sidebar tab (search, filters, thumbnails, send to workflow, drag to canvas);
// - on the Hikaze loader nodes, a view of the chosen model(s) and the picker;
// - toasts for the library scans reported on the websocket (`hikaze.scan`), and for
//   downloads (`hikaze.download`);
// - models sent from the manager's own page (/hikaze/) land in this workflow;
// - when a loaded workflow needs models the library lacks, one dialog lists them and can
//   download them (`missing-models.js`).

import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { forgetModels } from "./api.js";
import { refreshAllNodes, refreshNode, setupNode } from "./nodes.js";
import { NODE_SPECS } from "./payload.js";
import { createDownloadToasts } from "./download-toasts.js";
import { createScanToasts } from "./scan-toasts.js";
import { installLink } from "./link.js";
import { createSidebar } from "./sidebar.js";
import { checkWorkflow } from "./missing-models.js";
import { installDrop } from "./workflow.js";

const EXTENSION = "hikaze.ModelManager";
const SIDEBAR_ID = "hikaze-models";
const STYLE_ID = "hikaze-mm-style";

function injectStyles() {
  if (document.getElementById(STYLE_ID)) return;
  const link = document.createElement("link");
  link.id = STYLE_ID;
  link.rel = "stylesheet";
  link.href = new URL("./hikaze.css", import.meta.url).href;
  document.head.append(link);
}

function allGraphs() {
  const root = app.graph;
  if (!root) return [];
  const subgraphs =
    root.subgraphs && typeof root.subgraphs.values === "function" ? [...root.subgraphs.values()] : [];
  return [root, ...subgraphs];
}

const sidebar = createSidebar();
const onScan = createScanToasts({
  onEnd() {
    forgetModels();
    sidebar.refresh();
    for (const graph of allGraphs()) refreshAllNodes(graph);
  },
});

// Registered at import, before the websocket can deliver a scan event of the start-up scan.
api.addEventListener("hikaze.scan", (event) => onScan(event.detail));
const onDownload = createDownloadToasts({
  onDone() {
    forgetModels();
    sidebar.refresh();
  },
});
api.addEventListener("hikaze.download", (event) => onDownload(event.detail));

function registerSidebar() {
  const manager = app.extensionManager;
  const tab = {
    id: SIDEBAR_ID,
    icon: "pi pi-images",
    title: "Models",
    tooltip: "Hikaze model library",
    type: "custom",
    render: (el) => sidebar.render(el),
  };
  if (manager && manager.sidebarTab && typeof manager.sidebarTab.registerSidebarTab === "function") {
    manager.sidebarTab.registerSidebarTab(tab);
  } else if (manager && typeof manager.registerSidebarTab === "function") {
    manager.registerSidebarTab(tab);
  }
}

// What ComfyUI was last asked to load (its `models` list; see afterConfigureGraph).
const loaded = { models: null };

function rememberLoads() {
  const load = app.loadGraphData;
  if (typeof load !== "function" || load.hikazeWrapped) return;
  const wrapped = function (graphData, ...rest) {
    loaded.models = graphData && Array.isArray(graphData.models) ? graphData.models : null;
    return load.call(this, graphData, ...rest);
  };
  wrapped.hikazeWrapped = true;
  app.loadGraphData = wrapped;
}

app.registerExtension({
  name: EXTENSION,
  setup() {
    rememberLoads();
    injectStyles();
    registerSidebar();
    installDrop();
    installLink();
  },
  async afterConfigureGraph() {
    // Called by ComfyUI after it loaded a workflow (opened, dropped as a file or an image).
    // The graph it serializes has lost the workflow's own `models` list (where to get each
    // model, and its hash): it is taken from what was loaded.
    if (!app.graph) return;
    const workflow = app.graph.serialize();
    if (Array.isArray(loaded.models)) workflow.models = loaded.models;
    await checkWorkflow(workflow);
  },
  beforeRegisterNodeDef(nodeType, nodeData) {
    if (!NODE_SPECS[nodeData.name]) return;
    const created = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function (...args) {
      const result = created ? created.apply(this, args) : undefined;
      setupNode(this);
      return result;
    };
    const configure = nodeType.prototype.onConfigure;
    nodeType.prototype.onConfigure = function (...args) {
      const result = configure ? configure.apply(this, args) : undefined;
      refreshNode(this);
      return result;
    };
  },
});
