// The dashboard's words in English and Chinese. The first choice follows navigator.language
// (zh* -> Chinese); the toggle button switches, and the choice is kept in localStorage.
// Labels are set with textContent only. The one table for every script of the page (models.js and
// webhooks.js too).

const STORAGE_KEY = "teamocr.lang";

const WORDS = {
  en: {
    toggle: "中文",
    signInTitle: "Sign in to teamocr",
    username: "User name",
    password: "Password",
    signIn: "Sign in",
    logout: "Log out",
    online: "live",
    offline: "offline",
    feedTitle: "Live feed",
    feedEmpty: "No results yet.",
    channel: "Channel",
    allChannels: "All channels",
    root: "(root)",
    defaultChannel: "(my team's default)",
    search: "Search",
    clear: "Clear",
    searchPlaceholder: "Search text…",
    searchSummary: "{n} result(s) for “{q}”",
    dropHint: "Drop images, folders or ZIP files here",
    chooseFiles: "Choose files",
    chooseFolder: "Choose folder",
    uploadTo: "Upload to",
    uploading: "Uploading {n} file(s)… {pct}%",
    uploaded: "Uploaded {n} file(s).",
    uploadFailed: "Upload failed: {error}",
    uploadErrors: "{n} file(s) refused",
    nothingToUpload: "No files found to upload.",
    close: "Close",
    linesHint: "Click a line to copy it.",
    noLines: "No text found.",
    copied: "Copied",
    copyFailed: "Could not copy",
    edit: "Edit",
    save: "Save",
    cancel: "Cancel",
    saved: "Saved",
    editFailed: "Edit failed: {error}",
    imageFailed: "The image could not be shown.",
    pageOf: "Page {page} of {count}",
    prevPage: "Previous page",
    downloadPdf: "Download PDF",
    copyAll: "Copy all text",
    copyBlock: "Copy",
    copyBlockHint: "Copy this block's text",
    tableN: "Table {n}",
    tableTooLarge: "This table is too large to show here: download its CSV or the Excel workbook.",
    downloadCsv: "CSV",
    downloadExcel: "Excel",
    downloadFailed: "The download failed: {error}",
    "kind.paragraph": "Paragraph",
    "kind.heading": "Heading",
    "kind.list": "List",
    "kind.table": "Table",
    retry: "Retry",
    reread: "Read again",
    delete: "Delete",
    confirmDelete: "Delete this result for the whole team?",
    queuedAgain: "Queued again",
    versions: "Earlier readings",
    currentReading: "the current reading",
    versionOf: "version {version}, replaced {when}",
    actionFailed: "That did not work: {error}",
    "keys.title": "API keys",
    "keys.hint": "For scripts: send Authorization: Bearer KEY to the API (POST /api/v1/ocr reads a file in one call).",
    "keys.name": "What it is for",
    "keys.days": "Days (optional)",
    "keys.create": "Make a key",
    "keys.shownOnce": "Your new key (shown only now):",
    "keys.lastUsed": "last used",
    "keys.expires": "expires",
    "keys.revoke": "Revoke",
    "keys.none": "No keys yet.",
    "keys.failed": "The key could not be changed: {error}",
    downloadPdfHint: "A PDF whose text can be selected and searched",
    pdfFailed: "The PDF could not be made: {error}",
    nextPage: "Next page",
    errorLabel: "Error:",
    duplicateOf: "duplicate of an earlier file",
    pagesDone: "{done} of {count} pages read",
    wrongLogin: "Sign-in failed: {error}",
    sessionExpired: "Your session has ended; please sign in again.",
    loadFailed: "Loading failed: {error}",
    "status.queued": "queued",
    "status.processing": "processing",
    "status.done": "done",
    "status.duplicate": "duplicate",
    "status.failed": "failed",
    // the admins' Models panel (models.js)
    "models.title": "Models",
    "models.current": "Current version: {v}",
    "models.use": "Use",
    "models.inUse": "in use",
    "models.packaged": "packaged",
    "models.parent": "from {p}",
    "models.train": "Fine-tune on corrections",
    "models.switched": "Workers switch to {v} within seconds.",
    "models.switchFailed": "Switch failed: {error}",
    "models.trainFailed": "Could not start: {error}",
    "models.state.queued": "Queued",
    "models.state.waiting": "Waiting for other teams' jobs: number {n} in line.",
    "models.operatorsOnly": "(only an operator can switch the model, which every team uses)",
    "models.state.exporting": "Collecting corrections…",
    "models.state.training": "Training…",
    "models.state.registering": "Exporting and checking the new version…",
    "models.state.done": "Done: version {v} registered (not switched to).",
    "models.state.failed": "Failed: {error}",
    "models.step": "epoch {epoch}, step {step}/{steps}, loss {loss}",
    // the admins' Webhooks panel (webhooks.js)
    "webhooks.title": "Webhooks",
    "webhooks.refresh": "Refresh",
    "webhooks.hint": "Each result done, failed or corrected in your team is POSTed to these URLs, signed.",
    "webhooks.url": "https://chat.example.com/hooks/...",
    "webhooks.add": "Add webhook",
    "webhooks.remove": "Remove",
    "webhooks.log": "Delivery log",
    "webhooks.none": "No webhooks yet.",
    "webhooks.noDeliveries": "No deliveries yet.",
    "webhooks.secret": "Secret of {id} (shown only now; receivers check X-Teamocr-Signature with it): {secret}",
    "webhooks.added": "Webhook added.",
    "webhooks.removed": "Webhook removed.",
    "webhooks.failed": "Refused: {error}",
    "webhooks.last": "last: {state}",
    "webhooks.never": "nothing sent yet",
    "webhooks.delivery": "{time} · {event} · {state} · {attempts} attempt(s){code}{error}",
    "webhooks.state.queued": "queued",
    "webhooks.state.retrying": "retrying",
    "webhooks.state.delivered": "delivered",
    "webhooks.state.failed": "failed",
  },
  zh: {
    toggle: "English",
    signInTitle: "登录 teamocr",
    username: "用户名",
    password: "密码",
    signIn: "登录",
    logout: "退出登录",
    online: "实时",
    offline: "离线",
    feedTitle: "实时动态",
    feedEmpty: "还没有结果。",
    channel: "频道",
    allChannels: "全部频道",
    root: "（根目录）",
    defaultChannel: "（本团队默认）",
    search: "搜索",
    clear: "清除",
    searchPlaceholder: "搜索文字…",
    searchSummary: "“{q}”共 {n} 条结果",
    dropHint: "将图片、文件夹或 ZIP 文件拖到这里",
    chooseFiles: "选择文件",
    chooseFolder: "选择文件夹",
    uploadTo: "上传到",
    uploading: "正在上传 {n} 个文件… {pct}%",
    uploaded: "已上传 {n} 个文件。",
    uploadFailed: "上传失败：{error}",
    uploadErrors: "{n} 个文件被拒绝",
    nothingToUpload: "没有可上传的文件。",
    close: "关闭",
    linesHint: "点击一行即可复制。",
    noLines: "未识别到文字。",
    copied: "已复制",
    copyFailed: "复制失败",
    edit: "编辑",
    save: "保存",
    cancel: "取消",
    saved: "已保存",
    editFailed: "编辑失败：{error}",
    imageFailed: "无法显示该图片。",
    pageOf: "第 {page} 页，共 {count} 页",
    prevPage: "上一页",
    downloadPdf: "下载 PDF",
    copyAll: "复制全部文字",
    copyBlock: "复制",
    copyBlockHint: "复制这一段的文字",
    tableN: "表格 {n}",
    tableTooLarge: "这个表格太大，无法在这里显示：请下载它的 CSV 或 Excel 工作簿。",
    downloadCsv: "CSV",
    downloadExcel: "Excel",
    downloadFailed: "下载失败：{error}",
    "kind.paragraph": "段落",
    "kind.heading": "标题",
    "kind.list": "列表",
    "kind.table": "表格",
    retry: "重试",
    reread: "重新识别",
    delete: "删除",
    confirmDelete: "要为整个团队删除这条结果吗？",
    queuedAgain: "已重新排队",
    versions: "早先的识别结果",
    currentReading: "当前结果",
    versionOf: "第 {version} 版，替换于 {when}",
    actionFailed: "操作失败：{error}",
    "keys.title": "API 密钥",
    "keys.hint": "供脚本使用：向 API 发送 Authorization: Bearer 密钥（POST /api/v1/ocr 一次调用即识别）。",
    "keys.name": "用途",
    "keys.days": "有效天数（可选）",
    "keys.create": "生成密钥",
    "keys.shownOnce": "新密钥（仅显示这一次）：",
    "keys.lastUsed": "最近使用",
    "keys.expires": "到期",
    "keys.revoke": "吊销",
    "keys.none": "还没有密钥。",
    "keys.failed": "无法更改密钥：{error}",
    downloadPdfHint: "可选中、可搜索文字的 PDF",
    pdfFailed: "无法生成 PDF：{error}",
    nextPage: "下一页",
    errorLabel: "错误：",
    duplicateOf: "与之前的文件重复",
    pagesDone: "已识别 {done}/{count} 页",
    wrongLogin: "登录失败：{error}",
    sessionExpired: "会话已结束，请重新登录。",
    loadFailed: "加载失败：{error}",
    "status.queued": "排队中",
    "status.processing": "识别中",
    "status.done": "完成",
    "status.duplicate": "重复",
    "status.failed": "失败",
    "models.title": "模型",
    "models.current": "当前版本：{v}",
    "models.use": "使用",
    "models.inUse": "使用中",
    "models.packaged": "内置",
    "models.parent": "基于 {p}",
    "models.train": "用更正数据微调",
    "models.switched": "工作进程将在几秒内切换到 {v}。",
    "models.switchFailed": "切换失败：{error}",
    "models.trainFailed": "无法开始：{error}",
    "models.state.queued": "排队中",
    "models.state.waiting": "正在等待其他团队的任务：排在第 {n} 位。",
    "models.operatorsOnly": "（所有团队共用一个模型，只有运维管理员（operator）可以切换）",
    "models.state.exporting": "正在收集更正数据…",
    "models.state.training": "正在训练…",
    "models.state.registering": "正在导出并检查新版本…",
    "models.state.done": "完成：已登记版本 {v}（未自动切换）。",
    "models.state.failed": "失败：{error}",
    "models.step": "第 {epoch} 轮，第 {step}/{steps} 步，损失 {loss}",
    "webhooks.title": "Webhook",
    "webhooks.refresh": "刷新",
    "webhooks.hint": "本团队每个完成、失败或被更正的结果都会签名后 POST 到这些网址。",
    "webhooks.url": "https://chat.example.com/hooks/...",
    "webhooks.add": "添加 Webhook",
    "webhooks.remove": "删除",
    "webhooks.log": "投递记录",
    "webhooks.none": "还没有 Webhook。",
    "webhooks.noDeliveries": "还没有投递。",
    "webhooks.secret": "{id} 的密钥（仅此一次显示；接收方用它校验 X-Teamocr-Signature）：{secret}",
    "webhooks.added": "已添加 Webhook。",
    "webhooks.removed": "已删除 Webhook。",
    "webhooks.failed": "被拒绝：{error}",
    "webhooks.last": "最近：{state}",
    "webhooks.never": "尚未发送",
    "webhooks.delivery": "{time} · {event} · {state} · 尝试 {attempts} 次{code}{error}",
    "webhooks.state.queued": "排队中",
    "webhooks.state.retrying": "重试中",
    "webhooks.state.delivered": "已送达",
    "webhooks.state.failed": "失败",
  },
};

function initialLanguage() {
  let stored = null;
  try {
    stored = localStorage.getItem(STORAGE_KEY);
  } catch (_err) {
    stored = null; // storage disabled: follow the browser
  }
  if (stored && stored in WORDS) return stored;
  const wanted = (navigator.language || "en").toLowerCase();
  return wanted.startsWith("zh") ? "zh" : "en";
}

export class I18n extends EventTarget {
  constructor() {
    super();
    this.lang = initialLanguage();
  }

  /** The word for `key`, with {name} placeholders filled from `vars`. */
  t(key, vars = {}) {
    const text = WORDS[this.lang][key] ?? WORDS.en[key] ?? key;
    return text.replace(/\{(\w+)\}/g, (_m, name) => (name in vars ? String(vars[name]) : `{${name}}`));
  }

  set(lang) {
    this.lang = lang in WORDS ? lang : "en";
    try {
      localStorage.setItem(STORAGE_KEY, this.lang);
    } catch (_err) {
      // storage disabled: the choice lasts for this page only
    }
    this.apply(document);
    this.dispatchEvent(new Event("change"));
  }

  toggle() {
    this.set(this.lang === "zh" ? "en" : "zh");
  }

  /** Label every [data-i18n] (text) and [data-i18n-placeholder] element under `root`. */
  apply(root) {
    document.documentElement.lang = this.lang === "zh" ? "zh-CN" : "en";
    for (const node of root.querySelectorAll("[data-i18n]")) node.textContent = this.t(node.dataset.i18n);
    for (const node of root.querySelectorAll("[data-i18n-placeholder]")) {
      node.placeholder = this.t(node.dataset.i18nPlaceholder);
    }
    const toggle = document.getElementById("lang-toggle");
    if (toggle) toggle.textContent = this.t("toggle");
  }
}
