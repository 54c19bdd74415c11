"""Smoke tests: the menu answers, and the demo data `make run` loads lets a newcomer try it all."""


def test_menu(wx, openid):
    reply = wx.text(openid, "菜单")
    assert "请回复数字选择" in reply


def test_demo_data_lets_the_demo_users_try_every_feature(app, wx):
    runner = app.test_cli_runner()
    loaded = runner.invoke(args=["demo", "load", "--if-empty"])
    assert loaded.exit_code == 0 and "4 cadres loaded" in loaded.output
    again = runner.invoke(args=["demo", "load", "--if-empty"])
    assert "left as it is" in again.output
    menu = wx.text("demo-cadre-1", "菜单")
    assert "反映问题" in menu and "查询党费" in menu and "群发通知" in menu
    fees = wx.text("demo-cadre-1", "党费")
    assert "50" in fees and "未缴" in fees
    assert "书法入门" in wx.text("demo-family-1", "课程")
    assert "报名成功" in wx.text("demo-cadre-1", "报名 1")
    assert "第一党支部" in wx.text("demo-cadre-1", "群发")
    assert "待办" in wx.text("demo-staff-1", "菜单")
