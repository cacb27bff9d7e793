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
sign-in-help = 运营机构和监管方人员使用运营机构签发的 API 令牌登录。令牌不会保存在浏览器中，浏览器只保存会话 Cookie。运营机构签发令牌的命令：
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
product-signature = 签名（Ed25519，十六进制）
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
cli-col-time = 时间（UTC）
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
