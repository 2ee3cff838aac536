using ShareHub.Contracts;

namespace ShareHub.Broker.Tests;

public class BsnTests
{
    [Theory]
    [InlineData("111222333")] // 9+16+21+16+20+24+21+24-3 = 132 = 12·11
    [InlineData("123456782")]
    [InlineData("999999990")]
    public void TryParse_NumberPassingElfproef_IsAccepted(string text)
    {
        Assert.True(Bsn.TryParse(text, out var bsn));
        Assert.Equal(text, bsn.Value);
    }

    [Theory]
    [InlineData("111222334")] // last digit off by one
    [InlineData("123456789")]
    [InlineData("12345678")] // eight digits
    [InlineData("1234567820")] // ten digits
    [InlineData("12345678a")]
    [InlineData("000000000")] // passes the arithmetic, never issued
    [InlineData("")]
    [InlineData(null)]
    public void TryParse_InvalidNumber_IsRejected(string? text) => Assert.False(Bsn.TryParse(text, out _));

    [Fact]
    public void ToString_NeverRevealsTheDigits() => Assert.DoesNotContain("111222333", Bsn.Parse("111222333").ToString(), StringComparison.Ordinal);

    [Theory]
    [InlineData("12345678", true)]
    [InlineData("1234567", false)]
    [InlineData("123456789", false)]
    [InlineData("1234567a", false)]
    public void KvkNumber_RequiresExactlyEightDigits(string text, bool valid) => Assert.Equal(valid, KvkNumber.TryParse(text, out _));
}
