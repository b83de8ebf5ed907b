"""oncall (port 8009): 值班 on-call duty — duty roster, alert routing, grouping, acknowledgement, escalation.

Seed article 30 (24小时值班; 执行干警与技术人员"双值班"; 领导轮流带班) and the product brief
("on-call duty staff receive alerts"). Consumes ecc.alerts (contract §9) and Alertmanager's webhook
(infrastructure alerts), groups alerts of one rule, severity and team into one notification,
sends it to the people on duty (rules/roster.yaml + API overrides) through webhook, SMS gateway
(短信网关) or WeChat Work bot (企业微信群机器人), and escalates an unacknowledged critical one to
the leader on duty (带班领导). Routing and timing are data: rules/oncall.yaml. docs/oncall.md.
"""
