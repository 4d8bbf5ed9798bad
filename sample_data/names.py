"""Vietnamese-looking place, person and organisation names for the synthetic province."""

from __future__ import annotations

import random

SYLLABLES = ["Phú", "Tân", "An", "Bình", "Long", "Hòa", "Thạnh", "Mỹ", "Phước", "Hưng", "Lợi", "Thuận",
             "Đông", "Tây", "Nhơn", "Định", "Khánh", "Lộc", "Thới", "Giao", "Sơn", "Quới", "Hiệp", "Châu",
             "Thành", "Vĩnh", "Hữu", "Đức", "Trung", "Nghĩa", "Lương", "Xuân", "Hội", "Tường", "Phong"]
SURNAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Huỳnh", "Võ", "Phan", "Trương", "Bùi", "Đặng", "Đỗ", "Ngô",
            "Dương", "Lý", "Thạch", "Sơn", "Kim"]
# middle and given names by gender: "Thị" for most women, "Văn" for many men (Southern usage)
FEMALE_MIDDLE = ["Thị"] * 6 + ["Ngọc", "Kim", "Thanh", "Mỹ", "Bích"]
MALE_MIDDLE = ["Văn"] * 5 + ["Hữu", "Minh", "Quốc", "Thanh", "Công", "Đức", "Hoàng"]
FEMALE_GIVEN = ["Hạnh", "Hoa", "Lan", "Mai", "Thảo", "Vy", "Yến", "Hằng", "Trang", "Nhung", "Loan", "Thủy",
                "Diễm", "Trinh", "Phượng", "Cúc", "Hồng", "Ngân", "Tuyết", "Nga"]
MALE_GIVEN = ["An", "Bình", "Cường", "Dũng", "Hùng", "Long", "Nam", "Phúc", "Trí", "Tuấn", "Sơn", "Hiếu", "Tài",
              "Thắng", "Phong", "Khoa", "Lộc", "Tâm", "Hải", "Quang"]
HAMLETS = ["Phú Hòa", "Chợ", "1", "2", "3", "4", "Tân Lợi", "Bình Thạnh", "Mỹ Hòa", "An Bình", "Giồng Kè",
           "Cây Da", "Thạnh Hưng", "Long Hòa"]
STREETS = ["Đồng Khởi", "Nguyễn Đình Chiểu", "Hùng Vương", "Trần Phú", "Lê Lợi", "Quốc lộ 60", "Quốc lộ 57",
           "Đường tỉnh 883", "Đường tỉnh 887", "Phạm Hùng"]


def place_names(rng: random.Random, n: int) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < n:
        name = f"{rng.choice(SYLLABLES)} {rng.choice(SYLLABLES)}"
        if name.split()[0] == name.split()[1] or name in seen:
            continue
        seen.add(name)
        out.append(name)
    return out


def person(rng: random.Random) -> str:
    """A name whose middle and given names agree with one gender."""
    if rng.random() < 0.45:
        return f"{rng.choice(SURNAMES)} {rng.choice(FEMALE_MIDDLE)} {rng.choice(FEMALE_GIVEN)}"
    return f"{rng.choice(SURNAMES)} {rng.choice(MALE_MIDDLE)} {rng.choice(MALE_GIVEN)}"


def address(rng: random.Random, unit: str) -> str:
    """An address in `unit` ("Phường Phú Khương", "Xã Tân Thành Bình"; a bare name counts as a commune):
    a house number and street in a ward, a hamlet (ấp) or a road in a commune."""
    kind, _, rest = unit.partition(" ")
    if kind not in ("Xã", "Phường", "Thị", "Đặc"):
        kind, rest = "Xã", unit
    where = f"{kind.lower()} {rest}"
    if kind == "Phường":
        return f"{rng.randint(1, 250)} {rng.choice(STREETS[:6])}, {where}"
    if rng.random() < 0.5:
        return f"Ấp {rng.choice(HAMLETS)}, {where}"
    return f"{rng.randint(1, 250)} {rng.choice(STREETS)}, {where}"
