"""`flask --app bot roster import`: csv (UTF-8, BOM, GBK) and xlsx, upsert by phone, bad rows."""
from __future__ import annotations

from datetime import date, datetime

from openpyxl import Workbook
from sqlalchemy import func, select

from models import Cadre

HEADER = ["姓名", "手机号", "单位", "党支部", "出生日期", "是否军休", "住址", "社区"]


def run(app, path):
    return app.test_cli_runner().invoke(args=["roster", "import", str(path)])


def cadres(app):
    with app.extensions["yinling"].db.session() as s:
        return {c.phone: (c.name, c.unit, c.birth_date, c.is_military, c.community)
                for c in s.scalars(select(Cadre))}


def write_csv(path, rows, encoding):
    path.write_bytes("\r\n".join(",".join(r) for r in rows).encode(encoding))
    return path


def test_utf8_bom_csv_with_padded_headers_and_extra_columns(app, tmp_path):
    rows = [[" 姓名 ", "手机号", " 单位", "党支部", "出生日期", "是否军休", "住址", "社区", "备注"],
            ["张三", "13900001234", "市财政局", "一支部", "1945-03-08", "是", "幸福路1号", "幸福社区", "x"],
            ["李四", "139 0000 5678", "", "", "1950/1/2", "否", "", "", ""]]
    result = run(app, write_csv(tmp_path / "r.csv", rows, "utf-8-sig"))
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == "added 2, updated 0, rejected 0"
    assert cadres(app) == {
        "13900001234": ("张三", "市财政局", date(1945, 3, 8), True, "幸福社区"),
        "13900005678": ("李四", None, date(1950, 1, 2), False, None)}


def test_gbk_csv_reimport_updates_by_phone_and_rejects_bad_rows(app, tmp_path):
    first = [HEADER, ["张三", "13900001234", "市财政局", "", "", "", "", ""]]
    assert run(app, write_csv(tmp_path / "a.csv", first, "utf-8")).exit_code == 0
    rows = [HEADER,
            ["张三", "13900001234", "市教育局", "", "1945年3月8日", "", "", ""],  # update
            ["", "13900000001", "", "", "", "", "", ""],                        # no name
            ["王五", "1390000", "", "", "", "", "", ""],                         # short phone
            ["赵六", "13900000002", "", "", "1950-02-30", "", "", ""],           # no such day
            [],                                                                 # blank: skipped
            ["钱七", "13900000003", "", "", "", "是", "", ""]]                    # good
    result = run(app, write_csv(tmp_path / "b.csv", rows, "gbk"))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "rejected row 3: 缺少姓名" in out
    assert "rejected row 4: 手机号应为11位数字" in out
    assert "rejected row 5: 出生日期不存在" in out
    assert out.strip().splitlines()[-1] == "added 1, updated 1, rejected 3"
    got = cadres(app)
    assert got["13900001234"][:3] == ("张三", "市教育局", date(1945, 3, 8))
    assert got["13900000003"][3] is True
    assert len(got) == 2
    assert run(app, tmp_path / "b.csv").exit_code == 0
    with app.extensions["yinling"].db.session() as s:
        assert s.scalar(select(func.count(Cadre.id))) == 2  # never duplicated


def test_xlsx_with_numbers_and_dates_as_excel_stores_them(app, tmp_path):
    wb = Workbook()
    ws = wb.active
    ws.append(["序号"] + HEADER)
    ws.append([1, "张三", 13900001234, "市财政局", "一支部", datetime(1945, 3, 8), "是", "", "幸福社区"])
    ws.append([2, "李四", "13900005678", None, None, "2999-01-01", None, None, None])
    ws.append([3, "王五", 13900000009.0, None, None, None, "否", None, None])
    path = tmp_path / "roster.xlsx"
    wb.save(path)
    result = run(app, path)
    assert result.exit_code == 0, result.output
    assert "rejected row 3: 出生日期不合理" in result.output
    assert result.output.strip().splitlines()[-1] == "added 2, updated 0, rejected 1"
    got = cadres(app)
    assert got["13900001234"] == ("张三", "市财政局", date(1945, 3, 8), True, "幸福社区")
    assert got["13900000009"][0] == "王五"


def test_unreadable_files_exit_non_zero(app, tmp_path):
    assert run(app, tmp_path / "missing.csv").exit_code != 0
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(b"not a zip")
    assert run(app, bad).exit_code != 0
    other = tmp_path / "roster.txt"
    other.write_text("姓名,手机号\n")
    assert run(app, other).exit_code != 0
    headless = write_csv(tmp_path / "h.csv", [["名字", "电话"], ["张三", "13900001234"]], "utf-8")
    result = run(app, headless)
    assert result.exit_code != 0 and "姓名" in result.output
