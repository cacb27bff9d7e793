## Sandbox 的简体中文消息。每个 id 都在 en.ftl 中以相同的变量存在（目录的测试会检查）。
## 稳定标识符（状态、规则、检查项）在数据中保持不变，这里是它们的中文说法。

app-name = Sandbox
console-name = Sandbox 审核控制台

## 角色

role-provider = 数据提供方
role-operator = 运营机构
role-developer = 产品开发者
role-supervisor = 监管方
role-admin = 系统管理员

## 控制台框架

nav-pending = 待审核
nav-scenarios = 场景与预算
nav-products = 数据产品
nav-audit = 审计日志
sign-in = 登录
sign-out = 退出登录
sign-in-help = 运营机构、监管方、开发者、数据提供方和数据使用方人员使用运营机构签发的 API 令牌登录。令牌不会保存在浏览器中，浏览器只保存会话 Cookie。运营机构签发令牌的命令：
sign-in-token = API 令牌
sign-in-no-token = 请输入 API 令牌。
sign-in-too-many = 此地址登录失败次数过多，请一分钟后再试。
language-unknown = 请选择简体中文或英文。

## 问题页面

problem-internal = 出现错误
problem-internal-detail = 请查看服务器日志。
problem-not-found = 未找到
problem-bad-request = 请求无效
problem-refused = 已拒绝
refused-cross-origin = 该表单来自其他网站。
refused-csrf = 表单未携带本会话的密钥：请刷新页面后重试。

## 列标题

col-output = 输出结果
col-kind = 类型
col-status = 状态
col-checks = 检查
col-scenario = 场景
col-submitted-by = 提交人
col-staged = 暂存时间
col-check = 检查项
col-outcome = 结果
col-why = 原因
col-answer = 应答
col-mechanism = 机制或规则
col-when = 时间
col-who = 人员
col-tier = 审核级别
col-decision = 决定
col-reason = 理由
col-actor = 操作人
col-action = 操作
col-subject = 对象
col-details = 详情
col-product = 数据产品
col-released-by = 发布人
col-released = 发布时间
col-files = 文件
col-developer = 开发者
col-valid-until = 有效期至
col-epsilon = 已用 / 授予 ε
col-jobs = 任务数
col-queries = 已应答 / 已拒绝查询
col-attention = 需关注

## 待审核的输出结果

dashboard-title = 待审核输出结果
dashboard-heading = 等待审核的输出结果
dashboard-yours = 等待您决定（{ $tier }）
dashboard-none = 暂无等待您审核的内容。
dashboard-others = 等待另一级审核

## 表格

table-empty = 空表格。
table-first-rows = 仅显示前 { $shown } 行，共 { $total } 行；数据产品包含全部行。
table-rows = 共 { $total } 行。
bytes = { $n } 字节

## 单个输出结果

output-heading = 输出结果 { $name }
output-id = 输出结果编号
output-datasets = 数据集
output-job = 任务
output-job-by = { $job }，提交人 { $submitter }
output-module = 分析模块
checks-heading = 自动化检查
queries-heading = 数据来源：本任务发出的查询
col-accuracy = 95% 区间
accuracy-rounded = 舍入到 { $unit }
accuracy-withheld = { $count } 个单元格未发布（数量太少，没有意义）
interval-title = 本任务的查询结果为此列给出的 95% 区间半宽：真实值有 95% 的把握落在其中。
table-interval-note = 列名下的 ±：该列 95% 区间的半宽，来自本任务的查询结果。—：未发布（人数太少的平均值、方差或分位数）或为空。
col-request = 审核请求
open-request = 打开审核请求
decide-confirm = 我已阅读这些输出结果及其检查结果，确认此决定。
request-title = 任务 { $job } 的审核请求
request-awaiting = 等待
awaiting-operator = 运营机构审核
awaiting-supervisor = 监管机构审核
awaiting-developer = 开发者修改
awaiting-none = 无：所有输出结果均已作出决定
request-job = 任务 { $job }
request-no-outputs = 该任务没有暂存输出结果。
request-decide-all = 您的决定适用于本请求中所有等待您这一级审核的输出结果。
request-decided = 已记录：{ $decision }，适用于所有等待您这一级审核的输出结果。
thread-heading = 讨论
thread-empty = 暂无评论或决定。
thread-comment = 评论
thread-write = 给开发者和其他审核人员留言
thread-post = 发表评论
thread-posted = 您的评论已发表。
thread-incomplete = 评论表单不完整。
download-as = 下载表格：
product-files = 文件
scenario-heading = 场景 { $name }
scenario-purpose = 用途
scenario-valid = 有效期
scenario-mode = 模式
scenario-per-query = 每次查询至多 { $epsilon }
agreement-heading = 协议
agreement-response-plan = 安全事件应急预案
agreement-rights = 权利和义务
agreement-security = 安全要求
agreement-legal-basis = 法律依据
agreement-breach = 违约责任
agreement-terms = 条款
agreement-before-terms = 在要求填写协议条款之前批准
scenario-columns = 申请使用的数据集和字段
scenario-level4 = 申请的字段中有 { $count } 个为第 4 级（最敏感）：请核实用途确实需要，并核对其脱敏方式。
scenario-purpose-check = 该场景申请 { $count } 个字段。只批准用途所需的字段；其余请开发者删去。
scenario-reason = 意见（驳回时必填）
scenario-confirm = 我已核对用途、字段及其级别，确认此决定。
scenario-decided = 已记录：该场景现为“{ $status }”。
col-dataset = 数据集
col-column = 字段
col-level = 级别
col-access = 用法
col-description = 内容
access-none = 不可用
access-join-key = 关联键
access-filter = 筛选
access-group = 分组键
access-aggregate = 聚合
access-plain = 行级（公开数据）
content-as-written = 原文
nav-my-jobs = 我的任务
my-jobs-title = 我的任务及其审核
my-jobs-intro = 审核人员对您任务输出结果的意见，以及每项审核的进展。打开任务可阅读讨论并回复；对修改要求，请重新提交作答（sandbox job submit ... --resubmits 任务编号）。
my-jobs-none = 您尚未提交任务。
col-job = 任务
col-outputs = 输出结果
output-params = 参数
small-cell = 小于政策允许的最小分组（{ $min }）的计数
small-cell-note = 小于 { $min }（政策允许的最小分组）的计数已标出。
queries-none = 无查询。
queries-epsilon = 本任务消耗的 ε：{ $epsilon }
content-heading = 发布后的内容
content-chart = 图表 { $name }
content-unreadable = 无法显示该文件：{ $why }
decisions-heading = 审核决定
decisions-none = 尚无决定。
decide-comment = 意见（驳回、要求修改、推翻未通过的检查，以及运营机构放行需人工复核的检查项时必填）
decide-not-yours = 该输出结果不在等待您这一级审核。
decide-incomplete = 审核表单不完整。
decide-unknown = 请选择批准、驳回或要求修改。
decision-recorded = 已记录：{ $decision }。该输出结果现为“{ $status }”。

## 稳定标识符的中文说法

kind-table = 表格
kind-text = 文本
kind-chart = 图表
output-status-staged = 已暂存
output-status-checked = 已检查
output-status-flagged = 检查未通过
output-status-operator-approved = 运营机构已批准
output-status-changes-requested = 已要求修改
output-status-released = 已发布
output-status-rejected = 已驳回
tier-operator = 一级审核（运营机构）
tier-supervisor = 二级审核（监管方）
decision-approve = 批准
decision-reject = 驳回
decision-request-changes = 要求修改
outcome-pass = 通过
outcome-review = 需人工复核
outcome-fail = 未通过
check-type-and-size = 类型与大小
check-identifiers = 标识符
check-provenance = 数据来源
check-raw-values = 原始值
check-threshold = 分组规模
check-differencing = 差分攻击
query-status-answered = 已应答
query-status-refused = 已拒绝
query-status-failed = 执行失败
scenario-status-pending = 待审批
scenario-status-approved = 已批准
scenario-status-rejected = 已驳回
scenario-status-suspended = 已暂停
scenario-status-revoked = 已撤销
job-status-queued = 排队中
job-status-running = 运行中
job-status-succeeded = 已成功
job-status-failed = 已失败
job-status-cancelled = 已取消
flag-idle = 长期未使用
flag-expired = 已过期
flag-expires-soon = 即将过期
flag-refusals = 拒绝次数较多
flag-suspended = 已暂停

## 审计日志

audit-title = 审计日志
audit-intro = 共 { $size } 条事件。域内的每项操作都是其中一条，记录在一棵默克尔树中，树根由域密钥签名。
audit-verify = 校验完整日志
audit-earlier = ← 更早
audit-later = 更晚 →
audit-verified = 校验通过：{ $events } 条事件，{ $checkpoints } 个签名检查点，树根 { $root }。
audit-verify-failed = 校验失败：{ $why }

## 数据产品

products-title = 数据产品
products-heading = 数据产品登记
products-none = 尚未发布任何数据产品。
product-heading = 数据产品 { $id }
product-signed = 以下清单由域密钥签名；用此命令校验清单及每个文件：
product-signature = 签名（本域密钥：Ed25519，gm 密码套件中为 SM2；十六进制）
product-manifest = 清单

## 场景

scenarios-title = 场景与预算
scenarios-heading = 场景及其隐私预算

## 拒绝规则的含义

rule-syntax = 不是有效的 SQL，或包含多条语句
rule-invalid-query = SQL 有效但无法生成执行计划（类型或参数不匹配）
rule-not-a-query = 不是查询语句
rule-row-level-output = 查询会返回明细行而非聚合结果
rule-column-access = 字段的使用方式超出其访问规则
rule-unknown-column = 场景未包含该字段
rule-unknown-table = 场景未包含该表
rule-aggregate-not-allowed = 不允许的聚合函数
rule-function-not-allowed = 不允许的函数
rule-expression-not-allowed = 不允许的表达式形式
rule-plan-not-allowed = 不允许的查询结构
rule-group-keys-not-public = 分组键将取自数据本身
rule-no-dataset = 查询未读取任何数据集
rule-scenario = 场景不允许该查询
rule-budget-exhausted = 剩余隐私预算不足以支付该查询

## 面向用户的错误信息

error-line = 错误：{ $message }
error-refused = 查询被拒绝（{ $rule }，`{ $id }`）：{ $detail }
error-bad-request = 请求无效：{ $detail }
error-unauthenticated = 未通过身份验证：{ $detail }
error-forbidden = 无权操作：{ $detail }
error-not-found = 未找到：{ $detail }
error-conflict = 状态冲突：{ $detail }
error-review = 审核：{ $detail }
error-cancelled = 已取消：{ $detail }
error-stopped = 紧急停止：{ $detail }
error-busy = 系统繁忙：{ $detail }
error-policy = 策略：{ $detail }
error-input = 输入有误：{ $detail }
error-module = 分析模块：{ $detail }
error-limit = 超出限制：{ $detail }
error-verification-failed = 校验失败：{ $detail }
error-internal = 出现错误，请查看服务器日志。
error-remote = 服务器（{ $status } { $code }）：{ $detail }
error-other = { $detail }

## The command line
cli-col-name = 名称
cli-col-role = 角色
cli-col-status = 状态
cli-col-language = 语言
cli-col-id = 编号
cli-col-principal = 主体
cli-col-issued = 签发时间
cli-col-by = 操作人
cli-col-revoked = 吊销时间
cli-col-version = 版本
cli-col-rows = 行数
cli-col-provider = 提供方
cli-col-summary = 摘要
cli-col-developer = 开发者
cli-col-epsilon = ε 已用 / 授予
cli-col-submitted = 提交时间
cli-col-kind = 类型
cli-col-job = 任务
cli-col-output = 输出结果
cli-col-released = 发布时间
cli-col-seq = 序号
cli-col-time = 时间（{ $zone }）
cli-col-actor = 操作者
cli-col-action = 操作
cli-col-subject = 对象
cli-col-empty-principals = 没有主体
cli-col-empty-tokens = 没有令牌
cli-col-empty-datasets = 没有数据集
cli-col-empty-scenarios = 没有场景
cli-col-empty-jobs = 没有任务
cli-col-empty-outputs = 没有输出结果
cli-col-empty-products = 没有数据产品
cli-col-empty-events = 此后没有事件
cli-audit-more = 第 { $first } 至 { $last } 条，共 { $size } 条；下一页：sandbox audit log --from { $next }
cli-col-column = 列
cli-col-level = 级别
cli-col-access = 用途
cli-col-jobs = 任务数
cli-col-idle = 闲置
cli-col-answered = 已回答
cli-col-refused = 已拒绝（计数）
cli-col-flags = 提示
cli-col-check = 检查
cli-col-outcome = 结果
cli-col-reason = 原因
cli-col-scope = 范围
cli-col-target = 对象
cli-col-since = 生效时间
cli-col-empty-stops = 没有生效中的紧急停止
cli-and = {"和"}
cli-days = { $days } 天
cli-whoami = { $name }（{ $role }，{ $status }）
cli-principal-added = 已添加 { $name }（{ $role }）
cli-principal-status = { $name }（{ $role }）现为“{ $status }”
cli-language-chosen = { $name } 使用的语言：{ $language }（{ $tag }）
cli-language-auto = { $name } 使用客户端的语言，否则使用本域的默认语言
cli-settings =
    默认语言  { $language }（{ $tag }）
    时区      { $zone }
cli-token-issued =
    已为 { $principal } 签发令牌 { $id }（仅显示这一次；系统只保存其哈希值）：
    { $token }
cli-token-revoked = { $principal } 的令牌 { $id } 已吊销
cli-dataset-added = 已登记 { $name } 第 { $version } 版：{ $rows } 行，内容杂凑值 { $sha256 }
cli-dataset-show =
    { $name } 第 { $version } 版 — { $summary }
    提供方：{ $provider }
    行数：{ $rows }  获取时间：{ $obtained }
cli-dataset-retired-at = 已于 { $at } 由 { $by } 停用：{ $reason }
cli-dataset-retired = 数据集 { $name } 已停用：新场景不得再使用
cli-ingest-read = 入库报告：读取 { $read } 行，存储 { $stored } 行
cli-ingest-without-unit = { $rows } 行没有隐私单位，未存储
cli-ingest-units = { $units } 个隐私单位
cli-ingest-over-max-rows = ；其中 { $units } 个的行数超过 max_rows_per_unit（超出的 { $rows } 行永远不会被读取）
cli-ingest-nulls = { $count } 个空值
cli-ingest-below = { $count } 个低于取值范围
cli-ingest-above = { $count } 个高于取值范围
cli-ingest-outside = { $count } 个不在类别之内
cli-ingest-column = 列 { $name }：{ $found }
cli-ingest-dropped = 超出范围：{ $rows } 行未存储（策略的 out_of_range 为 `drop`）
cli-ingest-kept = 超出范围：已保留，每次查询都会将其截断到取值范围之内（策略的 out_of_range 为 `keep`）
cli-ingest-not-stored = 未存储（任何查询都看不到）：{ $columns }
cli-ingest-stored-desensitized = 以脱敏后的形式存储（与查询所见相同）：{ $columns }
cli-ingest-clean = 无需报告：没有空值，所有值都在取值范围和类别之内
cli-scenario-status = 场景 { $id }“{ $name }”现为“{ $status }”
cli-scenario-show =
    场景 { $id }“{ $name }”（{ $status }），开发者 { $developer }
    用途：{ $purpose }
    有效期：{ $from } 至 { $until }
    ε 已用 { $spent }，共 { $total }
cli-scenario-per-query = ，每次查询至多 { $epsilon }
cli-scenario-columns = 数据集与列：
cli-scenario-response-plan = 应急预案：{ $plan }
cli-scenario-agreement =
    协议：
      权利和义务：{ $rights }
      安全要求：{ $security }
      法律依据：{ $basis }
      违约责任：{ $breach }
cli-budget = 场景 { $scenario }：ε 已用 { $spent }，共 { $total }，剩余 { $left }
cli-budget-rho = zCDP：ρ 已用 { $spent }，共 { $total }（δ { $delta }）
cli-budget-delta = δ 已用 { $spent }，共 { $total }
cli-usage-refused = { $refused }（{ $counted }）
cli-usage-settings = 场景的越权拒绝达到 { $refusals } 次时暂停（0：从不），闲置 { $days } 天后标记
cli-job = 任务 { $id } { $status }
cli-job-queued = （前面还有 { $ahead } 个）
cli-job-progress = （已用 { $elapsed } 毫秒，限 { $deadline } 毫秒；{ $queries } 次查询；燃料 { $fuel }，限 { $limit }）
cli-job-output = 输出结果 { $id }“{ $name }”（{ $kind }）{ $status }
cli-job-cancelled = 任务 { $id } 已取消
cli-job-still = 任务 { $id } 在 { $seconds } 秒后仍为“{ $status }”；运行 `sandbox job status { $id }` 可查看何时结束
cli-output-released = 输出结果 { $id } 已发布为数据产品 { $product }
cli-product-at = 位于 { $path }
cli-product-fetch = 下载：sandbox product download { $product } --out 目录
cli-output-status = 输出结果 { $id } 现为“{ $status }”
cli-output-named = 输出结果 { $id }（{ $name }）：{ $status }
cli-output-shown = 输出结果 { $id }“{ $name }”（{ $kind }，{ $status }）
cli-wrote-file = 已写入 { $path }（{ $bytes } 字节）
cli-product-downloaded = 数据产品 { $id } 的 { $files } 个文件已写入 { $dir }
cli-product-verified = 数据产品 { $id } 验证通过：签名与 { $files } 个文件均一致
cli-stop-in-force = 紧急停止 { $id } 已生效；中断了 { $interrupted } 个运行中的任务
cli-stop-lifted = 紧急停止已解除
cli-stop-was-lifted = （已于 { $at } 由 { $by } 解除）
cli-audit-last-checkpoint = 最近的检查点为第 { $number } 个，含 { $size } 个事件，签署于 { $at }
cli-audit-no-checkpoint = 尚无检查点
cli-audit-verified = 审计日志验证通过：{ $events } 个事件，根哈希 { $root }，{ $checkpoints } 个已签名检查点（{ $last }）
cli-audit-verified-by-server = 服务器验证审计日志通过：{ $events } 个事件，根哈希 { $root }，{ $checkpoints } 个已签名检查点（{ $last }）
cli-audit-checkpoint = 检查点 { $number }：{ $size } 个事件，根哈希 { $root }，签署于 { $at }
cli-audit-exported = 已将事件 { $from }..={ $to }（{ $events } 个事件，{ $checkpoints } 个检查点）导出到 { $path }
cli-audit-retention = 审计日志保存期限：{ $years } 年（至少 { $least } 年；事件永不删除）
cli-proof-given-key = 给定的公钥
cli-proof-own-key = 公钥 { $key }（请与本域的公钥核对）
cli-proof-verified = { $kind } 证明验证通过（{ $suite } 密码套件）：{ $statement }；签署者为{ $by }
cli-query-no-keys = 无
cli-query-accepted = 已接受：对“{ $datasets }”的 { $aggregates } 个聚合；分组键：{ $keys }
cli-thread = { $developer } 在场景 { $scenario } 下的审核申请；等待{ $awaiting }
cli-thread-job = 任务 { $id }（{ $status }，提交于 { $at }）
cli-thread-decision = { $tier }：{ $decision }，针对 { $output }
cli-man-wrote = 已将 { $pages } 个手册页写入 { $dir }
cli-init-suite = 密码套件：{ $suite }（杂凑 { $hash }，签名 { $signature }，密钥封装 { $wrapping }），在数据域的整个生命周期内固定。
cli-init-master = 主密钥：{ $source }（标识 { $id }）。请将其与数据目录及其备份分开保管：没有它，数据域无法打开。
cli-key-protected = 数据域的密钥已由来自 { $source } 的主密钥（标识 { $id }）加密保存，其明文副本已删除；其元数据库已加密。
cli-key-rotated = 数据域的密钥已从主密钥 { $from } 改由 { $to }（{ $source }）加密保存；旧密钥的文件已删除。请将新密钥与数据目录分开保管；旧密钥已无法打开数据域。
cli-backup-done = 备份 { $id } 已写入 { $file }：{ $files } 个文件，{ $bytes } 字节，审计日志共 { $events } 条事件。只有本域的主密钥能打开它：请分开保管。
cli-backup-verified = 备份 { $id }（{ $taken } 时备份）已核验：{ $files } 个文件与其清单一致；其审计日志（{ $events } 条事件）和 { $checkpoints } 个签名检查点均核验通过。
cli-migrated = PostgreSQL 元数据库的模式版本为 { $version }{ $created ->
    [yes] （已在空数据库中创建）。
   *[no] 。
}
cli-restored = 备份 { $id }（{ $taken } 时备份）已恢复到 { $dir }：已检查 { $files } 个文件；其审计日志（{ $events } 条事件）和 { $checkpoints } 个签名检查点均核验通过。
cli-restored-holds = 对照另行保存的检查点：恢复后的日志包含其全部 { $checkpoint } 条事件（共 { $log } 条）。
cli-restored-rolled-back = 已回滚：恢复后的日志有 { $log } 条事件，而另行保存的检查点覆盖 { $checkpoint } 条：备份之后发生的事不在本域中。处理之前，不要把它当作当前状态提供服务。
cli-restored-diverged = 已分叉：恢复后日志的前 { $checkpoint } 条事件与另行保存的检查点所签的不同：此日志被改写过。不要提供服务。
cli-init-done =
    已初始化 { $dir }
    之后的命令通过 --data-dir { $dir } 使用它，或先执行
      export SANDBOX_DATA_DIR={ $dir }
    第一个主体须为运营人员（operator）或管理员（admin）：
      sandbox --data-dir { $dir } principal add 名称 --role operator
cli-checkpoint-warning = 警告：未能写入审计检查点：{ $error }
cli-did-you-mean = 您是否指 `{ $name }`？
cli-need-actor = 请说明操作者：--as 名称（或 SANDBOX_AS）
cli-progress-registering = 正在登记 { $file }
cli-progress-running = 正在运行 { $module }
cli-progress-submitting = 正在提交 { $module }，至多等待 { $seconds } 秒
cli-progress-downloading = 正在下载数据产品 { $id }
cli-server-url = --server { $url }：请给出 http:// 或 https:// 开头的地址
cli-token-malformed = SANDBOX_TOKEN（或 --token）不是 Sandbox 的 API 令牌（sbx_<id>_<secret>）
cli-server-needs-token = --server 需要令牌：请设置 SANDBOX_TOKEN（或 --token）
cli-not-remote = `{ $command }` 作用于数据目录，不能通过服务器执行：请在服务器所在机器上运行，不加 --server
cli-remote-parquet = 通过服务器只能登记 CSV 数据集；Parquet 请在服务器所在机器上登记
cli-remote-verify = product verify 用本域公钥检查本地文件夹：请不加 --server 运行（先下载数据产品）
cli-params-not-json = 参数不是 JSON：{ $error }
cli-wait-invalid = --wait：秒数，至少为 0
cli-prove-what = 请说明要证明的内容：SEQ，或 --from M [--to N]
cli-unknown-language = 未知语言 `{ $text }`（zh-CN、en，或 auto 表示使用客户端的语言）
principal-status-active = 正常
principal-status-suspended = 已暂停
principal-status-revoked = 已吊销
stop-scope-domain = 全域
stop-scope-scenario = 场景
stop-scope-developer = 开发者
cli-dev-synthetic = 合成数据：每个数据集按策略生成 { $units } 个单位；此处内容不描述任何真实数据。
cli-dev-failed = 任务失败（{ $kind }）：{ $error }
cli-dev-marker = 此处每个文件都由 `sandbox dev run` 根据策略生成的合成数据计算而来，不描述任何真实的个人或组织，也不是数据产品。

## 演示

demo-build-first = 请先构建示例模块：scripts/build-guests.sh
demo-title = Sandbox 演示：原始数据不出域，数据可用不可见。
demo-init =
    1. 运营机构在 { $dir } 初始化一个域
       （SQLite 元数据、{ $suite } 密码套件及其 { $signature } 签名密钥、域内存储目录）
demo-principals = 主体：{ $principals }
demo-dataset = 2. 数据提供方 psb-wang 登记“{ $name }”：{ $rows } 行，以 Parquet 格式存储于域内
demo-scenario =
    3. 开发者 dev-zhao 申请场景“{ $name }”；数据提供方 psb-wang 与监管人员 sup-chen 均无异议；运营人员 ops-li 批准
       用途：{ $purpose }
       预算：ε 共 { $epsilon }，每次查询 { $per_query }；有效期 { $from } 至 { $until }
demo-refusals = 4. 中介拒绝一切会暴露原始数据的查询（每次拒绝都记入审计）：
demo-job =
    5. dev-zhao 将模块 income_by_district.wasm（{ $bytes } 字节）提交为任务 { $job }
       它在没有任何输入输出的 wasmtime 中运行：{ $queries } 次查询，燃料 { $fuel }；状态：{ $status }
demo-module-log = 模块日志：{ $text }
demo-budget = ε 已用 { $spent }，共 { $total }；剩余 { $left }
demo-outputs = 6. 输出结果已暂存并自动检查：
demo-release-refused = 7. 审核。未经任何批准即发布，被拒绝——{ $error }
demo-self-review-refused = 开发者批准自己的输出结果，被拒绝：{ $error }
demo-operator-approves = 运营人员 ops-li 批准
demo-supervisor-approves = 监管人员 sup-chen 批准 → 已发布
demo-source = { $provider } 提供的 { $name } 第 { $version } 版（获取于 { $obtained }）
demo-product =
    8. 数据产品 { $id } 位于 { $path }
       manifest.json 由本域密钥签名；验证通过：签名与文件哈希一致
       来源：{ $sources }
       模块 { $hash } { $module }
demo-audit = 9. 审计日志：{ $events } 个事件，Merkle 树与哈希链验证通过，{ $checkpoints } 个已签名检查点（根哈希 { $root }…）
demo-done = 完成，用时 { $seconds } 秒。数据目录：{ $dir }
demo-principal = { $name }（{ $role }）

## 自动检查的发现

list-separator = {"、"}
item-separator = {"；"}
check-at-cell = 第 { $row } 行“{ $column }”列
check-at-row = 第 { $row } 行
check-at-line = 第 { $line } 行
check-finding = { $at }：{ $what }
check-finding-number = { $at }（{ $number }）：{ $what }
check-numbers = { $numbers }
check-examples = { $items }
check-examples-more = { $items }（另有 { $more } 处）
check-kind-not-allowed = 策略不允许“{ $kind }”类输出结果
check-over-bytes = { $bytes } 字节，超过上限 { $cap }
check-over-rows = { $rows } 行，超过上限 { $cap }
check-what-table = 表格，{ $rows } 行
check-what-text = Markdown 文本
check-what-png-size = PNG 图表，{ $width }×{ $height } 像素
check-what-png = PNG 图表
check-what-svg = SVG 图表
check-png-refused = PNG 被拒绝：{ $error }
check-svg-refused = SVG 被拒绝：{ $error }
check-size-allowed = { $what }，{ $bytes } 字节：允许
check-size-problems = { $what }：{ $problems }
check-identifiers-none = 未发现{ $kinds }
check-identifiers-found = 发现{ $found }
identifier-resident-ids = 居民身份证号
identifier-mobiles = 手机号
identifier-bank-cards = 银行卡号
identifier-emails = 电子邮件地址
identifier-plates = 车牌号
identifier-resident-id = 居民身份证号 { $value }
identifier-mobile = 手机号 { $value }
identifier-bank-card = 银行卡号 { $value }
identifier-email = 电子邮件地址 { $value }
identifier-plate = 车牌号 { $value }
check-raw-no-sets = 没有可比较的值集合
check-raw-hit = 与“{ $column }”的一个罕见值相同
check-raw-no-columns = 没有含罕见值的受保护列
check-raw-clean = 未发现 { $columns } 的罕见原始值
check-threshold-small = 一个小于 { $min } 的计数，且不来自任何回答
check-threshold-total = 等于一个包含已抑制单元格的合计
check-threshold-filled = 为中介已抑制的单元格填入了值
check-threshold-clean = 没有小单元格、已抑制单元格或泄露信息的合计；中介对其发布的每个单元格都执行了 min_group_size { $min }、支配性规则和 p% 规则
check-threshold-derived = 表中有 { $count } 个数由模块推导得出：支配性规则和 p% 规则只作用于中介发布的单元格
check-provenance-image = 图片：其标签和数值无法自动读取；请与模块收到的回答核对
check-provenance-clean = 全部 { $count } 个数都来自模块收到的回答
check-provenance-untraced = { $count } 个数中有 { $untraced } 个不在模块收到的任何回答中（推导或编造）：{ $places }
check-differencing-not-table = 不是表格
check-differencing-dp = 回答带有差分隐私噪声：两次发布之差同样含噪声，其隐私成本已计费
check-differencing-cell = “{ $column }”列与“{ $table }”相差不足 { $min }
check-differencing-row-cell = 第（{ $row }）行的“{ $column }”列与“{ $table }”相差不足 { $min }
check-differencing-clean = 已与本场景已发布的 { $tables } 张表比较：没有小于 { $min } 的差
cli-progress-exporting = 正在将审计日志导出到 { $path }
cli-progress-deciding = 正在记录决定
cli-progress-fetching = 正在获取输出结果 { $id }
cli-table-rows = 共 { $total } 行
cli-table-first = 共 { $total } 行，显示前 { $shown } 行
cli-chart-not-shown = `{ $name }` 是图表（{ $bytes } 字节）：请下载后查看
cli-staged-output = “{ $name }”（{ $kind }，{ $bytes } 字节）：{ $status }
cli-dev-written = -> { $path }
cli-check-line = { $mark } { $check }：{ $reason }
parse-unknown-argument = 未知的参数 '{ $arg }'
parse-unknown-command = 未知的命令 '{ $command }'
parse-invalid-value = 参数 '{ $arg }' 的值 '{ $value }' 无效
parse-missing-argument = 缺少必需的参数：'{ $arg }'
parse-conflict = '{ $arg }' 不能与 '{ $other }' 同时使用
parse-did-you-mean = 您是否指：{ $hint }
parse-valid-values = 可选的值：{ $hint }
parse-more = 更多信息请运行 '--help'。

## 数据产品仅交付有权获取者；撤回；机构

role-data-user = 数据使用方
error-withdrawn = 已撤回：{ $detail }
col-providers = 数据提供方
col-scope = 交付对象
col-product-status = 状态
col-datasets = 数据集版本
col-principal = 主体
col-organisation = 机构
col-downloads = 下载次数
col-last-download = 最近下载
product-scope-organisation = 机构 { $code }
product-scope-none = 仅审核人员及其开发者
product-granted-later = 由 { $who } 于 { $at } 追加授权
product-withdrawn-on = 已于 { $at } 撤回
product-withdrawn-by = 已由 { $who } 于 { $at } 撤回
product-available = 可下载
product-not-granted = 未授权给您
product-not-granted-long = 此数据产品未授权给您：目录列明其内容、交付对象和数据来源，但不提供其文件。
product-files-withdrawn = 其文件已不能下载。
product-holders = 持有者（已下载者）
product-holders-none = 尚无人下载。
product-withdraw-reason = 撤回理由（将记录在案，并写入签名的撤回通知）
product-withdraw-confirm = 我确认撤回此数据产品：自此拒绝一切下载，且不可恢复。
product-withdraw = 撤回数据产品
product-withdrawn-done = 数据产品已撤回；已列出需通知的持有者。
cli-col-scenario = 场景
cli-col-organisation = 机构
cli-col-downloads = 下载次数
cli-col-last-download = 最近下载
cli-col-empty-holders = 尚无人下载
cli-col-credit-code = 统一社会信用代码
cli-col-security-officer = 数据安全负责人
cli-col-qualified-until = 资质有效期至
cli-col-epsilon-cap = 已用 / 上限 ε
cli-col-members = 成员数
cli-col-empty-organisations = 名录中尚无机构
cli-product-withdrawal = 已由 { $who } 于 { $at } 撤回：{ $reason }
cli-product-shown = 数据产品 { $id }：{ $name }
      场景       { $scenario }（{ $purpose }）
      数据提供方 { $providers }
      数据       { $datasets }
      发布       { $released }，发布人 { $by }
      交付对象   { $scope }
cli-product-files = 文件：{ $files }
cli-product-withdrawn = 数据产品 { $id } 已撤回。{ $count ->
    [0] 尚无人下载。
   *[other] 需通知的持有者 { $count } 名：{ $holders }
}
cli-product-granted = 数据产品 { $id } 的交付对象：{ $scope }。
cli-organisation = 机构 { $code }：{ $name }
      数据安全负责人   { $officer }（{ $contact }）
      资质有效期至     { $until }
      已用 / 上限 ε    { $spent } / { $cap }
      成员             { $members }
cli-principal-in-organisation = { $name } 属于机构 { $code }。
cli-principal-in-no-organisation = { $name } 不属于任何机构。
cli-col-empty-types = 尚未确立任何场景类型
cli-scenario-awaits-consents = 场景 { $id }“{ $name }”已由 { $who } 批准；待各方意见齐备后方可使用（`sandbox scenario consents { $name }`）
cli-consents-by-type = 场景 { $id } 属于已确立的场景类型“{ $kind }”：该类型的审核已涵盖它，无需另行征求意见。
cli-consents-complete = 场景 { $id }：各方意见均已齐备。
cli-consents-awaited = 场景 { $id } 待征求意见：
cli-consent-provider = 数据集“{ $dataset }”的提供方
cli-consent-supervisor = 监管人员
cli-consent-no-objection = { $party }：无异议（{ $who }，{ $at }）
cli-consent-objection = { $party }：有异议（{ $who }，{ $at }）：{ $reasons }
cli-consent-awaited = { $party }：待答复
cli-consent-answer = 已于 { $at } 答复：{ $answer }
cli-consents-operator-approved = 运营人员 { $who } 已批准。
cli-consents-operator-awaited = 尚待运营人员批准。
cli-scenario-type = 已由场景 { $id } 确立场景类型“{ $name }”：{ $description }
cli-version-in-use = 数据集 { $name } 第 { $version } 版未被暂停
cli-version-suspended = 数据集 { $name } 第 { $version } 版已于 { $at } 由 { $who } 暂停：{ $reason }
cli-version-objection = { $who } 于 { $at } 提出异议：{ $reason }
cli-version-products = { $count ->
    [0] 没有数据产品来自此版本
   *[other] { $count } 个数据产品来自此版本：{ $products }
}
cli-recalled = { $count ->
    [0] 无需召回：没有数据产品来自此版本，或均已撤回。
   *[other] 已召回 { $count } 个数据产品：{ $products }
}
cli-not-destroyed = 该数据集尚未销毁。
cli-destroyed = 数据集 { $name } 已由 { $who } 于 { $at } 销毁：{ $reason }。其文件原为：
cli-sharing-decided = 数据集 { $name }（不予共享）可用于场景“{ $scenario }”：由 { $who } 决定。
incident-grade-general = 一般
incident-grade-relatively-major = 较大
incident-grade-major = 重大
incident-grade-especially-major = 特别重大
incident-entry-action = 处置
incident-entry-stop = 紧急停止
incident-entry-suspension = 暂停
incident-entry-withdrawal = 撤回
incident-entry-report = 报告
incident-entry-notice = 通知
org-add = 登记机构
org-change = 变更 { $code }：续期或终止资质、安全负责人、预算上限
org-contact = 安全负责人联系方式
org-cap = 成员场景合计 ε 上限（留空：不设）
org-reason = 原因（将被记录）
org-save = 保存变更
incident-open = 处理中
incident-open = 登记安全事件
incident-grade = 等级
incident-title = 标题
incident-description = 事件经过
incident-log = 记入处置时间线
incident-entry-kind = 类型
incident-entry-reference = 所涉对象（停止令编号、被暂停的主体或场景、被撤回的产品）
incident-entry-recipient = 报告或通知对象
incident-entry-text = 采取的措施
incident-close = 结案
incident-summary = 处置结果
order-issue = 下达整改通知
order-target-name = 开发者、机构统一社会信用代码或场景
order-target-principal = 开发者
order-target-organisation = 机构
order-target-scenario = 场景
order-close = 结束：已整改
order-answer = 答复整改通知
my-orders-title = 发给您的整改通知
oversight-recorded = 已记录。
incident-closed = 已结案
order-status-open = 待整改
order-status-answered = 已答复
order-status-closed = 已结束
order-status-enforced = 已逾期（已暂停）
cli-col-grade = 等级
cli-col-deadline = 期限
cli-col-empty-incidents = 没有安全事件
cli-col-empty-orders = 没有整改通知
cli-incident = 安全事件 { $id }（{ $grade }）：{ $title }
      由 { $who } 于 { $at } 登记：{ $description }
cli-incident-entry = { $at } { $who } · { $kind } { $reference } → { $to }：{ $text }
cli-incident-closed = 由 { $who } 于 { $at } 结案：{ $summary }
cli-order = 整改通知 { $id }（{ $status }）致 { $kind } { $target }，期限 { $deadline }：{ $requirement }
cli-order-answer = 由 { $who } 于 { $at } 答复：{ $answer }
cli-report-domain = 整个数据域
cli-report-scenario = 场景“{ $name }”
cli-report = { $scope }的合规报告，{ $from } 至 { $to }（以 { $size } 条事件的签名检查点为准）；各项要求的证据：
cli-report-written = 已连同签名写入 { $dir }（`sandbox report verify { $dir }`）。
nav-reports = 合规报告
reports-title = 合规报告
reports-heading = 合规报告
reports-from = 自
reports-to = 至
reports-scenario = 场景（留空：整个数据域）
reports-make = 生成报告
reports-checkpoint = 以 { $size } 条事件的签名检查点为准
reports-download = 下载已签名报告（JSON）
reports-verify = 离线验证：
reports-requirement = 要求
reports-articles = 条款
reports-evidence = 事件数
reports-events = 审计日志中的证据
provider-scenarios-intro = 使用您登记的数据集的场景，以及您对每个场景的意见：在您表示无异议之前，数据不会被使用。
provider-your-word = 您的意见
consents-heading = 使用前征求意见
consents-by-type = 属于已确立的场景类型“{ $kind }”：该类型的审核已涵盖本场景。
consents-party = 相关方
consents-provider = 数据集“{ $dataset }”的提供方
consents-supervisor = 监管人员
consents-answer = 申请人的答复
consents-operator-approved = 运营人员 { $who } 已批准；各方意见齐备后即可使用。
consents-operator-awaited = 尚待运营人员批准。
consent-state-awaited = 待答复
consent-state-no-objection = 无异议
consent-state-objection = 有异议
nav-oversight = 监督管理
oversight-title = 监督管理
oversight-incidents = 安全事件
oversight-no-incidents = 尚未登记安全事件。
oversight-orders = 整改通知
oversight-no-orders = 尚未下达整改通知。
oversight-target = 对象
oversight-deadline = 期限
oversight-requirement = 整改要求
oversight-organisations = 机构名录
oversight-no-organisations = 名录中尚无机构。
oversight-credit-code = 统一社会信用代码
oversight-name = 名称
oversight-officer = 数据安全负责人
oversight-qualified-until = 资质有效期至
oversight-members = 成员
consents-reasons = 异议理由（记录在案并告知申请人）
consents-confirm = 我确认记录数据主管部门对本场景的意见。
nav-datasets = 数据目录
datasets-title = 数据目录
datasets-version = 版本
datasets-share = 共享类型
datasets-authorized = 已授权场景
datasets-retired = 已停用
version-heading = 数据集 { $name } 第 { $version } 版
version-suspended = 已由 { $who } 自 { $at } 起暂停
version-objections = 异议
version-no-objections = 尚无人对此版本提出异议。
version-products = 来自此版本的数据产品
version-reason = 理由（记录在案）
version-confirm = 我确认对此数据集版本采取行动。
version-object = 提出异议
version-suspend = 暂停其查询
version-reinstate = 恢复
version-recall = 召回其全部数据产品
version-done = 已记录。
