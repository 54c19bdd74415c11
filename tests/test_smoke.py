def test_menu(wx, openid):
    reply = wx.text(openid, "菜单")
    assert "请回复数字选择" in reply
